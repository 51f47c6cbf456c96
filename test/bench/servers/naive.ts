import 'reflect-metadata';
import { Controller, Headers, HttpCode, HttpException, Inject, Module, Post, Req } from '@nestjs/common';
import type { RawBodyRequest } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Request } from 'express';
import { Pool } from 'pg';
import Stripe from 'stripe';

/**
 * The naive baseline: the webhook handler most e-commerce plugins ship. A
 * small NestJS app on express that verifies the signature with the SDK and
 * applies the status change inside the request, in one transaction:
 * SELECT the order (locked), UPDATE its status, INSERT a history row.
 * No inbox, no queue, no dedupe: a retry or an out-of-order event is applied as it comes.
 */

const POOL = Symbol('POOL');
const SECRET = Symbol('SECRET');

@Controller('webhooks')
class NaiveWebhookController {
  private readonly webhooks = new Stripe('sk_test_naive_baseline', { telemetry: false }).webhooks;

  constructor(@Inject(POOL) private readonly pool: Pool, @Inject(SECRET) private readonly secret: string) {}

  @Post('stripe')
  @HttpCode(200)
  async receive(@Req() req: RawBodyRequest<Request>, @Headers('stripe-signature') signature: string): Promise<{ received: true }> {
    let event: Stripe.Event;
    try {
      event = this.webhooks.constructEvent(req.rawBody as Buffer, signature, this.secret, 300);
    } catch (err) {
      throw new HttpException((err as Error).message, 400);
    }
    if (event.type === 'payment_intent.succeeded') await this.markPaid(event.data.object.id, event.id, event.type);
    return { received: true };
  }

  private async markPaid(paymentIntentId: string, eventId: string, type: string): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: string; status: string }>(
        `SELECT o.id, o.status FROM orders o JOIN payments p ON p.order_id = o.id WHERE p.id = $1 FOR UPDATE OF o`,
        [paymentIntentId],
      );
      const order = rows[0];
      if (order && order.status !== 'paid') {
        await client.query(`UPDATE orders SET status = 'paid', updated_at = now() WHERE id = $1`, [order.id]);
        await client.query(
          `INSERT INTO order_status_history (order_id, from_status, to_status, at, reason, event_id) VALUES ($1, $2, 'paid', now(), $3, $4)`,
          [order.id, order.status, type, eventId],
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

@Module({
  controllers: [NaiveWebhookController],
  providers: [
    { provide: POOL, useFactory: () => new Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE ?? 20) }) },
    { provide: SECRET, useValue: process.env.WEBHOOK_SECRET },
  ],
})
class NaiveModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create<NestExpressApplication>(NaiveModule, { rawBody: true, logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  const address = app.getHttpServer().address();
  console.log(`naive listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

void main();
