import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { ApplyBacklog } from '../common/apply-backlog';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { Metrics } from '../metrics/metrics';
import { ClaimedDelivery, DeliveryResult } from './order-event.types';
import { OrderEventsListener } from './order-events.listener';
import { OrderEventsRepository } from './order-events.repository';
import { nextAttemptAt } from './retry-schedule';
import { closeEndpointConnections, postJson } from './http-post';
import { EventSigner } from './event-signer';
import { EventLoopLoad, claimDelay, isSaturated, sendCapacity } from './send-capacity';

/** How often the outbox is swept for what no notification announced (another process died, a retry came due), and waiting deliveries are parked. */
const SWEEP_MS = 1000;
/** Notifications arriving within this are answered by one claim. */
const WAKE_COALESCE_MS = 20;
/** Answers arriving within this are recorded by one statement. */
const RECORD_COALESCE_MS = 10;

/**
 * Posts order events to every ORDER_EVENTS_URL, signed per Standard Webhooks.
 * Three short steps, none holding a transaction or lock across the network:
 * lease due deliveries (one UPDATE), POST them, record the answers (one UPDATE
 * per group of answers). A process killed mid-send leaves leases that run out,
 * and the delivery is sent again: at least once, never twice at the same time.
 */
@Injectable()
export class OrderEventSender implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(OrderEventSender.name);
  private readonly signer?: EventSigner;
  /** Longer than a send can take (it is cut off at the timeout) plus recording its answer, so a lease runs out only for a sender that died. */
  private readonly leaseMs: number;
  private inFlight = 0;
  private claiming = false;
  /** When the last claim was made (ms since the epoch): while the process is busy, claims are spaced (see claimDelay). */
  private lastClaimAt = 0;
  private parking = false;
  private claimAgain = false;
  /** The last claim filled all the room it had: more deliveries are due than are in flight. */
  private backlogged = false;
  private wakeTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  private answered: DeliveryResult[] = [];
  private recording?: Promise<void>;
  private recordTimer?: NodeJS.Timeout;
  private stopped = false;
  private unsubscribe?: () => void;
  /** Sends and parking sweeps in flight: awaited before the pool closes. */
  private readonly running = new Set<Promise<void>>();
  private load?: EventLoopLoad;

  constructor(
    private readonly events: OrderEventsRepository,
    private readonly listener: OrderEventsListener,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: Metrics,
    private readonly applyBacklog: ApplyBacklog,
  ) {
    const { secret, timeoutMs } = config.orderEvents;
    if (secret) this.signer = new EventSigner(secret);
    this.leaseMs = timeoutMs + 5000;
  }

  onApplicationBootstrap(): void {
    if (this.config.orderEvents.endpoints.length === 0) return;
    this.load = new EventLoopLoad();
    this.unsubscribe = this.listener.subscribe(() => this.wake());
    this.sweepTimer = setInterval(() => {
      this.track(this.parkBlocked());
      this.wake();
    }, SWEEP_MS);
    this.sweepTimer.unref();
    this.wake();
  }

  /** Stops claiming, lets the sends in flight finish and records their answers before the pool closes. */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.load?.stop();
    clearInterval(this.sweepTimer);
    clearTimeout(this.wakeTimer);
    await Promise.allSettled([...this.running]);
    clearTimeout(this.recordTimer);
    await this.record();
    await closeEndpointConnections();
  }

  /** Asks for a claim soon; many wakes in a burst make one claim. */
  wake(delayMs = WAKE_COALESCE_MS): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    if (this.wakeTimer && delayMs >= WAKE_COALESCE_MS) return;
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      void this.claim();
    }, delayMs);
    this.wakeTimer.unref();
  }

  private async claim(): Promise<void> {
    if (this.claiming || this.stopped) return;
    this.claiming = true;
    let retryInMs = 0;
    try {
      do {
        this.claimAgain = false;
        // Fewer sends, claimed less often, while the process is busy (see isBusy); an answer wakes us again.
        const busy = this.isBusy();
        const delay = claimDelay(busy, this.lastClaimAt, Date.now());
        if (delay > 0) {
          retryInMs = delay;
          break;
        }
        const room = sendCapacity(busy) - this.inFlight;
        if (room <= 0) break;
        this.lastClaimAt = Date.now();
        const claimed = await this.events.claimDue(room, this.leaseMs, this.config.orderEvents.endpoints);
        for (const delivery of claimed) this.track(this.send(delivery));
        this.backlogged = claimed.length === room;
        if (this.backlogged) this.claimAgain = true;
      } while (this.claimAgain && !this.stopped);
    } catch (err) {
      this.logger.warn({ msg: 'claiming order event deliveries failed; the sweep tries again', error: (err as Error).message });
    } finally {
      this.claiming = false;
      if (retryInMs > 0) this.wake(retryInMs);
    }
  }

  /**
   * Busy: the event loop is saturated (see EventLoopLoad), or this process's
   * applier is behind (see ApplyBacklog). Then order events wait for payments:
   * a few sends, claimed a few times a second, and the backlog goes out once
   * the burst is applied. Deferring to the saturated loop alone did not help
   * much: in a flood it hovers around the threshold while PostgreSQL, Redis and
   * the load share the two cores.
   */
  private isBusy(): boolean {
    return isSaturated(this.load?.utilization ?? 0) || this.applyBacklog.behind();
  }

  /** Takes the deliveries waiting behind an earlier undelivered event out of the claim's way (see OrderEventsRepository.parkBlocked). */
  private async parkBlocked(): Promise<void> {
    if (this.parking || this.stopped) return;
    this.parking = true;
    try {
      const parked = await this.events.parkBlocked(this.config.orderEvents.endpoints);
      if (parked > 0) this.logger.log({ msg: 'parked order event deliveries waiting behind an undelivered event', parked });
    } catch (err) {
      this.logger.warn({ msg: 'parking blocked order event deliveries failed; the next sweep tries again', error: (err as Error).message });
    } finally {
      this.parking = false;
    }
  }

  private track(work: Promise<void>): void {
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  private async send(delivery: ClaimedDelivery): Promise<void> {
    this.inFlight++;
    const result = await this.post(delivery);
    this.inFlight--;
    this.answered.push(result);
    // Behind a backlog, with half the room free: claim other orders' deliveries now rather than after the
    // answers are recorded, so it streams out instead of going in rounds (an order's next still waits for
    // the record). Without one, new events announce themselves, and a claim per answer would be waste.
    if (this.backlogged && this.inFlight <= sendCapacity(this.isBusy()) / 2) this.wake(0);
    if (result.status === 'pending') {
      // This process tries again when it is due; the sweep would find it too, a little later.
      setTimeout(() => this.wake(0), Math.max(0, result.nextAttemptAt.getTime() - Date.now())).unref();
    }
    this.recordSoon();
  }

  /** Records the answers gathered in the next few milliseconds together, then claims again (an answered event frees its order's next). */
  private recordSoon(): void {
    if (this.recordTimer) return;
    this.recordTimer = setTimeout(() => {
      this.recordTimer = undefined;
      // Recorded: the orders' next events are due now; behind a backlog, claim at once.
      void this.record().then(() => this.wake(this.backlogged ? 0 : WAKE_COALESCE_MS));
    }, RECORD_COALESCE_MS);
  }

  /** One POST; never throws. */
  private async post(delivery: ClaimedDelivery): Promise<DeliveryResult> {
    const { timeoutMs, retryBaseMs, giveUpAfterMs } = this.config.orderEvents;
    const body = delivery.body;
    const now = new Date();
    let httpStatus: number | null = null;
    let error: string | null = null;
    let result: 'delivered' | 'http_error' | 'timeout' | 'network';
    try {
      if (!this.signer) throw new Error('ORDER_EVENTS_SECRET is not set');
      const response = await postJson(
        delivery.endpoint,
        body,
        {
          'content-type': 'application/json',
          'user-agent': 'Settle-Order-Events/1',
          'webhook-id': delivery.eventId,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': this.signer.sign(delivery.eventId, now, body),
        },
        timeoutMs,
      );
      httpStatus = response.status;
      const ok = response.status >= 200 && response.status < 300;
      result = ok ? 'delivered' : 'http_error';
      if (!ok) error = `HTTP ${response.status}${response.text ? `: ${response.text.slice(0, 200)}` : ''}`;
    } catch (err) {
      const e = err as Error;
      result = e.name === 'TimeoutError' ? 'timeout' : 'network';
      error = result === 'timeout' ? e.message : `${e.message}${(e as NodeJS.ErrnoException).code ? ` (${(e as NodeJS.ErrnoException).code})` : ''}`;
    }
    this.metrics.orderEventDeliveryAttempts.inc({ result });
    const done = new Date();
    if (result === 'delivered') {
      this.metrics.orderEventDeliverySeconds.observe((done.getTime() - delivery.createdAt.getTime()) / 1000);
      return { eventId: delivery.eventId, endpoint: delivery.endpoint, attempt: delivery.attempt, status: 'delivered', nextAttemptAt: done, httpStatus, error: null };
    }
    const next = nextAttemptAt(delivery.attempt, done, delivery.retryFrom, retryBaseMs, giveUpAfterMs);
    if (!next) this.logger.warn({ msg: 'order event delivery failed for good', eventId: delivery.eventId, endpoint: delivery.endpoint, attempts: delivery.attempt, error });
    return { eventId: delivery.eventId, endpoint: delivery.endpoint, attempt: delivery.attempt, status: next ? 'pending' : 'failed', nextAttemptAt: next ?? done, httpStatus, error };
  }

  /** Writes the answers gathered so far in one statement; one write at a time, the next takes what came in meanwhile. */
  private async record(): Promise<void> {
    while (this.recording) await this.recording;
    if (this.answered.length === 0) return;
    const batch = this.answered;
    this.answered = [];
    this.recording = this.events
      .recordResults(batch)
      .catch((err) => {
        // The leases run out and the deliveries are sent again: at least once, never lost.
        this.logger.warn({ msg: 'recording order event answers failed; they will be sent again', error: (err as Error).message, count: batch.length });
      })
      .finally(() => (this.recording = undefined));
    await this.recording;
  }
}
