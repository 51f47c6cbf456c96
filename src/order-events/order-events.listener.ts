import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Client } from 'pg';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { ORDER_EVENTS_CHANNEL } from './order-events.repository';

type Listener = (payload: string) => void;

/**
 * LISTENs for committed order events on a connection of its own (a pooled
 * connection would lose its LISTEN when returned). Notifications only wake:
 * the outbox rows are the truth, and whoever is woken reads them. A lost
 * connection is reopened; what was announced meanwhile is found by the
 * sender's sweep and the streams' heartbeat checks, and by everyone at once on
 * reconnect (listeners get 'reconnected').
 */
@Injectable()
export class OrderEventsListener implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(OrderEventsListener.name);
  private readonly listeners = new Set<Listener>();
  private client?: Client;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Subscribers now (live streams and the sender). */
  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** Calls `listener` with each payload (`<orderId> <sequence>`, `redeliver <eventId>` or `reconnected`); returns the unsubscribe. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async onModuleInit(): Promise<void> {
    await this.connect().catch((err) => this.retryLater(err));
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.config.databaseUrl, connectionTimeoutMillis: 5000 });
    // One notification may announce many events, a line each.
    client.on('notification', (n) => {
      for (const line of (n.payload ?? '').split('\n')) this.emit(line);
    });
    client.on('error', (err) => this.retryLater(err));
    client.on('end', () => this.retryLater(new Error('connection ended')));
    this.client = client;
    await client.connect();
    await client.query(`LISTEN ${ORDER_EVENTS_CHANNEL}`);
  }

  private retryLater(err: unknown): void {
    if (this.stopped || this.retryTimer) return;
    this.logger.warn({ msg: 'order events LISTEN connection lost; reconnecting', error: (err as Error).message });
    const old = this.client;
    this.client = undefined;
    old?.removeAllListeners();
    old?.on('error', () => undefined);
    void old?.end().catch(() => undefined);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect()
        .then(() => this.emit('reconnected'))
        .catch((e) => this.retryLater(e));
    }, 1000);
    this.retryTimer.unref();
  }

  private emit(payload: string): void {
    for (const listener of this.listeners) listener(payload);
  }
}
