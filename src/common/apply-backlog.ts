import { Global, Injectable, Module } from '@nestjs/common';

/** A batch this large means the applier is behind: that many events arrived during one transaction. */
export const BEHIND_BATCH = 64;
/** How long the applier counts as behind after such a batch. */
export const BEHIND_FOR_MS = 500;

/**
 * Whether this process's applier is behind, for work that yields to settling
 * payments (the order-event sender). The webhook processor notes every batch
 * it cuts. At a steady 500 events a second a batch holds a few events; in a
 * flood, hundreds.
 */
@Injectable()
export class ApplyBacklog {
  private behindSince = Number.NEGATIVE_INFINITY;

  noteBatch(size: number, now = Date.now()): void {
    if (size >= BEHIND_BATCH) this.behindSince = now;
  }

  behind(now = Date.now()): boolean {
    return now - this.behindSince < BEHIND_FOR_MS;
  }
}

/** One ApplyBacklog per app, for the processor and the sender (different modules). */
@Global()
@Module({ providers: [ApplyBacklog], exports: [ApplyBacklog] })
export class ApplyBacklogModule {}
