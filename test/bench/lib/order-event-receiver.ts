import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/**
 * The shop's end of order events for the bench (BENCH_ORDER_EVENTS=1): answers
 * 200 at once, keeps each event id's first arrival, and verifies one request in
 * VERIFY_EVERY with standardwebhooks (all of them would make this process, the
 * load generator too, the bottleneck); a bad one fails the run.
 */
const VERIFY_EVERY = 50;

export class BenchOrderEventReceiver {
  /** Event id -> first arrival (performance.now()) and the event's age then (ms since its createdAt). */
  readonly firstSeen = new Map<string, { at: number; ageMs: number }>();
  requests = 0;
  badSignatures = 0;
  readonly secret = `whsec_${randomBytes(32).toString('base64')}`;
  private readonly webhook = new Webhook(this.secret.slice('whsec_'.length));
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const id = String(req.headers['webhook-id']);
        const body = Buffer.concat(chunks).toString('utf8');
        if (this.requests % VERIFY_EVERY === 1) {
          try {
            this.webhook.verify(body, req.headers as Record<string, string>);
          } catch {
            this.badSignatures++;
          }
        }
        if (!this.firstSeen.has(id)) {
          const createdAt = /"createdAt":"([^"]+)"/.exec(body)?.[1];
          this.firstSeen.set(id, { at: performance.now(), ageMs: createdAt ? Date.now() - Date.parse(createdAt) : NaN });
        }
        res.writeHead(200).end();
      });
    });
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/order-events`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
