import http from 'node:http';
import { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { MockPsp } from '../../src/mock-psp';

/** The official SDK pointed at a mock, as the backend builds it. */
export function mockSdk(mock: MockPsp, key = 'sk_test_suite'): Stripe {
  return new Stripe(key, { host: '127.0.0.1', port: mock.port, protocol: 'http', telemetry: false, maxNetworkRetries: 0 });
}

/** Events of one object (or of objects naming it as payment_intent or charge), oldest first. */
export function eventsFor(mock: MockPsp, objectId: string): Stripe.Event[] {
  return mock.events().filter((e) => {
    const o = e.data.object as { id?: string; payment_intent?: string; charge?: string };
    return o.id === objectId || o.payment_intent === objectId || o.charge === objectId;
  });
}

/**
 * A webhook endpoint that verifies each delivery with `stripe.webhooks.constructEvent`
 * and the secret it is given (which it may learn after starting, as a shop
 * learns an endpoint's secret from the API).
 */
export class VerifyingReceiver {
  readonly received: Stripe.Event[] = [];
  /** Deliveries whose signature did not verify, with the reason. */
  readonly rejected: string[] = [];
  secret = '';
  /** Answer 500 to the next N deliveries (then verify again). */
  failNext = 0;
  private server!: http.Server;

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.failNext > 0) {
          this.failNext -= 1;
          res.writeHead(500).end();
          return;
        }
        try {
          this.received.push(Stripe.webhooks.constructEvent(Buffer.concat(chunks), req.headers['stripe-signature'] as string, this.secret));
          res.writeHead(200).end();
        } catch (err) {
          this.rejected.push((err as Error).message);
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhooks`;
  }

  types(): string[] {
    return this.received.map((e) => e.type);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
