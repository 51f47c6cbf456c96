import { createdInRange, precheckSignedRequest } from './signature-precheck';

describe('precheckSignedRequest', () => {
  const body = Buffer.from('{"id":"evt_1"}');
  it('passes an ordinary header and body', () => {
    expect(precheckSignedRequest(body, 't=1700000000,v1=abc,v1=def')).toBeNull();
  });
  it('refuses a body that starts with a UTF-8 byte order mark', () => {
    expect(precheckSignedRequest(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]), 't=1,v1=a')).toMatchObject({ reason: 'malformed' });
  });
  it('refuses more than one t=', () => {
    expect(precheckSignedRequest(body, 't=1700000000,t=1731536000,v1=abc')).toMatchObject({ reason: 'signature', message: expect.stringContaining('more than one t=') });
    expect(precheckSignedRequest(body, 't=1, t=2,v1=abc')).not.toBeNull();
  });
});

describe('createdInRange', () => {
  it.each([[1700000000, true], [0, true], [253402300799, true], [253402300800, false], [1e300, false], [-1, false], [1.5, false], ['1', false]])('%p -> %p', (created, ok) => {
    expect(createdInRange(created)).toBe(ok);
  });
});
