import { jsonNestsDeeperThan } from './json-body';

const depth = (n: number) => Buffer.from('['.repeat(n) + ']'.repeat(n));

describe('jsonNestsDeeperThan', () => {
  it('counts arrays and objects', () => {
    expect(jsonNestsDeeperThan(depth(32), 32)).toBe(false);
    expect(jsonNestsDeeperThan(depth(33), 32)).toBe(true);
    expect(jsonNestsDeeperThan(Buffer.from('{"a":{"b":{"c":[1]}}}'), 3)).toBe(true);
    expect(jsonNestsDeeperThan(Buffer.from('{"a":{"b":{"c":1}}}'), 3)).toBe(false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonNestsDeeperThan(Buffer.from(`{"a":"${'['.repeat(100)}"}`), 2)).toBe(false);
    expect(jsonNestsDeeperThan(Buffer.from(`{"a":"\\"${'{'.repeat(100)}"}`), 2)).toBe(false);
    expect(jsonNestsDeeperThan(Buffer.from(`{"a":"\\\\",${'['.repeat(5)}`), 2)).toBe(true);
  });

  it('stops at the first level past the limit, however long the body', () => {
    expect(jsonNestsDeeperThan(depth(1_000_000), 32)).toBe(true);
  });
});
