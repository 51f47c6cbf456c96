import { Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { ScheduleModule } from '@nestjs/schedule';
import { Test, TestingModule } from '@nestjs/testing';
import { Client } from 'pg';
import type Stripe from 'stripe';
import { runMigrations } from '../../src/bootstrap';
import { AppConfig } from '../../src/config/app-config';
import { APP_CONFIG, ConfigModule } from '../../src/config/config.module';
import { loadConfig } from '../../src/config/env';
import { DatabaseModule } from '../../src/database/database.module';
import { MetricsModule } from '../../src/metrics/metrics.module';
import { OrdersModule } from '../../src/orders/orders.module';
import { CheckoutSessionInput, PspClient } from '../../src/psp/psp-client';
import { ReconciliationModule } from '../../src/reconciliation/reconciliation.module';
import { PaymentApplierModule } from '../../src/webhooks/webhooks.module';
import { WEBHOOK_QUEUE_SETTINGS } from '../../src/webhooks/webhook-queue';
import { createTestDatabase, testAppEnv } from './services';

/**
 * A PSP client in memory, put in place of StripeClient per test: PaymentIntents
 * the test sets up, and a hook (`onCall`) that runs inside every call, so a
 * test can look at the database while the PSP is being asked, or make
 * something happen meanwhile.
 */
export class FakePsp implements PspClient {
  readonly intents = new Map<string, Stripe.PaymentIntent>();
  readonly calls: string[] = [];
  onCall: (operation: string) => Promise<void> = async () => undefined;
  private next = 0;

  setIntent(id: string, fields: Partial<Stripe.PaymentIntent>): Stripe.PaymentIntent {
    const intent = { ...(this.intents.get(id) ?? { id, object: 'payment_intent', metadata: {} }), ...fields } as Stripe.PaymentIntent;
    this.intents.set(id, intent);
    return intent;
  }

  private async call(operation: string): Promise<void> {
    this.calls.push(operation);
    await this.onCall(operation);
  }

  async createPaymentIntent(input: { orderId: string; amount: number; currency: string; email: string; captureMethod: 'automatic' | 'manual' }): Promise<Stripe.PaymentIntent> {
    await this.call('create_payment_intent');
    return this.setIntent(`pi_fake_${++this.next}`, {
      status: 'requires_payment_method',
      capture_method: input.captureMethod,
      amount_capturable: 0,
      amount: input.amount,
      amount_received: 0,
      currency: input.currency,
      client_secret: `pi_fake_${this.next}_secret`,
      metadata: { order_id: input.orderId },
      last_payment_error: null,
    });
  }

  async retrievePaymentIntent(id: string): Promise<Stripe.PaymentIntent> {
    await this.call('retrieve_payment_intent');
    const intent = this.intents.get(id);
    if (!intent) throw new Error(`no such PaymentIntent ${id}`);
    return intent;
  }

  async cancelPaymentIntent(id: string, _orderId: string, reason?: 'abandoned'): Promise<Stripe.PaymentIntent> {
    await this.call('cancel_payment_intent');
    return this.setIntent(id, { status: 'canceled', cancellation_reason: reason ?? 'requested_by_customer', amount_capturable: 0 });
  }

  async capturePaymentIntent(id: string, _orderId: string, amount?: number): Promise<Stripe.PaymentIntent> {
    await this.call('capture_payment_intent');
    const intent = this.intents.get(id);
    if (!intent) throw new Error(`no such PaymentIntent ${id}`);
    return this.setIntent(id, { status: 'succeeded', amount_received: amount ?? intent.amount_capturable, amount_capturable: 0 });
  }

  readonly sessions = new Map<string, Stripe.Checkout.Session>();

  async createCheckoutSession(input: CheckoutSessionInput): Promise<Stripe.Checkout.Session> {
    await this.call('create_checkout_session');
    const id = `cs_fake_${++this.next}`;
    const amount = input.items.reduce((s, i) => s + i.unitAmount * i.quantity, 0);
    const session = {
      id,
      object: 'checkout.session',
      status: 'open',
      payment_status: 'unpaid',
      payment_intent: null,
      amount_total: amount,
      currency: input.currency,
      client_reference_id: input.orderId,
      metadata: { order_id: input.orderId },
      url: `https://checkout.fake/${id}`,
      expires_at: input.expiresAt,
    } as unknown as Stripe.Checkout.Session;
    this.sessions.set(id, session);
    return session;
  }

  async retrieveCheckoutSession(id: string): Promise<Stripe.Checkout.Session> {
    await this.call('retrieve_checkout_session');
    const session = this.sessions.get(id);
    if (!session) throw new Error(`no such Checkout Session ${id}`);
    return session;
  }

  async expireCheckoutSession(id: string): Promise<Stripe.Checkout.Session> {
    await this.call('expire_checkout_session');
    const session = this.sessions.get(id);
    if (!session) throw new Error(`no such Checkout Session ${id}`);
    Object.assign(session, { status: 'expired' });
    return session;
  }

  readonly disputes = new Map<string, Stripe.Dispute>();

  async submitDisputeEvidence(id: string): Promise<Stripe.Dispute> {
    await this.call('update_dispute');
    const dispute = this.disputes.get(id);
    if (!dispute) throw new Error(`no such dispute ${id}`);
    return Object.assign(dispute, { status: 'under_review' });
  }

  async closeDispute(id: string): Promise<Stripe.Dispute> {
    await this.call('close_dispute');
    const dispute = this.disputes.get(id);
    if (!dispute) throw new Error(`no such dispute ${id}`);
    return Object.assign(dispute, { status: 'lost' });
  }

  async createRefund(): Promise<Stripe.Refund> {
    throw new Error('FakePsp: refunds are not faked');
  }

  readonly charges = new Map<string, Stripe.Charge>();

  async retrieveCharge(id: string): Promise<Stripe.Charge> {
    await this.call('retrieve_charge');
    const charge = this.charges.get(id);
    if (!charge) throw new Error(`FakePsp: no charge ${id} was set up`);
    return charge;
  }

  async listEvents(): Promise<Stripe.ApiList<Stripe.Event>> {
    await this.call('list_events');
    return { object: 'list', data: [], has_more: false, url: '/v1/events' } as Stripe.ApiList<Stripe.Event>;
  }
}

@Module({})
class ServiceTierModule {}

export interface ServiceTier {
  app: TestingModule;
  psp: FakePsp;
  config: AppConfig;
  /** A connection to the suite's database, for arranging and looking. */
  db: Client;
  stop(): Promise<void>;
}

/**
 * The middle test tier: the order, applier and reconciler services on a real
 * PostgreSQL database of their own (migrated as at start-up), their queue on
 * the real Redis under a prefix of its own, and the PSP client replaced by a
 * FakePsp. No HTTP, no queue processor: tests call the services.
 */
export async function startServiceTier(): Promise<ServiceTier> {
  const database = await createTestDatabase();
  // The PSP URL is never called: the client is replaced.
  const config = loadConfig(testAppEnv(database.url, 'http://127.0.0.1:9', { APP_ROLE: 'worker' }));
  const psp = new FakePsp();
  const app = await Test.createTestingModule({
    imports: [
      {
        module: ServiceTierModule,
        imports: [
          ConfigModule.forRoot(config),
          DatabaseModule,
          MetricsModule.forRoot(false),
          BullModule.forRootAsync({
            inject: [APP_CONFIG],
            useFactory: (c: AppConfig) => ({ url: c.redisUrl, prefix: c.queuePrefix, settings: WEBHOOK_QUEUE_SETTINGS }),
          }),
          ScheduleModule.forRoot(),
          OrdersModule,
          PaymentApplierModule,
          ReconciliationModule,
        ],
      },
    ],
  })
    .overrideProvider(PspClient)
    .useValue(psp)
    .compile();
  app.useLogger(false);
  await runMigrations(app);
  await app.init();
  const db = new Client({ connectionString: database.url });
  await db.connect();
  return {
    app,
    psp,
    config,
    db,
    stop: async () => {
      await db.end();
      await app.close();
      await database.drop();
    },
  };
}

/** How many of the database's sessions are inside a transaction right now (0 means nothing holds a lock or a transaction). */
export async function openTransactions(db: Client): Promise<number> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`,
  );
  return rows[0].n;
}
