/**
 * One applying transaction at a time: `run` waits its turn (first come, first
 * served) and holds it only while its work runs. The turn is taken at once
 * when free, so a caller that starts `run` and then asks `idle()` sees it
 * taken.
 */
export class TransactionTurn {
  private busy = false;
  private readonly next: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.busy) await new Promise<void>((resolve) => this.next.push(resolve));
    else this.busy = true;
    try {
      return await work();
    } finally {
      const following = this.next.shift();
      // Handed straight to the next in line: the turn never looks free in between.
      if (following) following();
      else this.release();
    }
  }

  /** Resolves once no work runs and none waits its turn (new work may have taken it again by the time the caller goes on). */
  idle(): Promise<void> {
    return this.busy ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
  }

  private release(): void {
    this.busy = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
