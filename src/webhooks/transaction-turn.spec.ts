import { TransactionTurn } from './transaction-turn';

/** A promise and the function that settles it, to hold work open from the test. */
function gate(): { promise: Promise<void>; open(): void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const turnOf = () => new Promise((resolve) => setImmediate(resolve));

describe('TransactionTurn', () => {
  it('runs one piece of work at a time, in the order they asked', async () => {
    const turn = new TransactionTurn();
    const order: string[] = [];
    const first = gate();
    const a = turn.run(async () => {
      order.push('a starts');
      await first.promise;
      order.push('a ends');
    });
    const b = turn.run(async () => void order.push('b'));
    const c = turn.run(async () => void order.push('c'));
    await turnOf();
    expect(order).toEqual(['a starts']);
    first.open();
    await Promise.all([a, b, c]);
    expect(order).toEqual(['a starts', 'a ends', 'b', 'c']);
  });

  it('is taken as soon as run is called, so idle waits for work started in the same tick', async () => {
    const turn = new TransactionTurn();
    const work = gate();
    let idle = false;
    const running = turn.run(() => work.promise);
    void turn.idle().then(() => (idle = true));
    await turnOf();
    expect(idle).toBe(false);
    work.open();
    await running;
    await turnOf();
    expect(idle).toBe(true);
  });

  it('does not look idle while it passes from one piece of work to the next', async () => {
    const turn = new TransactionTurn();
    const first = gate();
    const second = gate();
    let idle = false;
    const a = turn.run(() => first.promise);
    const b = turn.run(() => second.promise);
    void turn.idle().then(() => (idle = true));
    first.open();
    await a;
    await turnOf();
    expect(idle).toBe(false);
    second.open();
    await b;
    await turnOf();
    expect(idle).toBe(true);
  });

  it('passes the turn on when work fails, and gives the caller its error', async () => {
    const turn = new TransactionTurn();
    const failing = turn.run(async () => {
      throw new Error('rolled back');
    });
    const next = turn.run(async () => 'applied');
    await expect(failing).rejects.toThrow('rolled back');
    await expect(next).resolves.toBe('applied');
    await expect(turn.idle()).resolves.toBeUndefined();
  });
});
