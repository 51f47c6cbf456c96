import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** A received order event: the verified body and when it came. */
export interface Received {
  id: string;
  type: string;
  sequence: number;
  createdAt: string;
  data: { id: string; status: string; history: Array<{ from: string; to: string }>; [key: string]: unknown };
  answered: number;
  at: number;
}

export const ORDER_EVENTS_TEST_SECRET = `whsec_${Buffer.from('settle-order-events-test-key-0123456789').toString('base64')}`;

/**
 * A shop's endpoint for order events, on a free port: verifies every request
 * with the standardwebhooks library (a bad signature is answered 400 and
 * counted), answers what `answer` says, and records every delivery, and any
 * event that arrived while a delivery of the same event was still in flight.
 */
export class OrderEventReceiver {
  readonly received: Received[] = [];
  readonly badSignatures: string[] = [];
  /** Event ids that were delivered while an earlier delivery of the same id was still being answered. */
  readonly overlaps: string[] = [];
  /** Events that arrived while another event of the same order was still being answered (n+1 must wait for n). */
  readonly orderOverlaps: string[] = [];
  /** Decides each answer: a status code and how long to take. */
  answer: (event: Received) => { status: number; delayMs?: number } = () => ({ status: 200 });
  private readonly inFlight = new Set<string>();
  private readonly ordersInFlight = new Set<string>();
  private readonly webhook = new Webhook(ORDER_EVENTS_TEST_SECRET.slice('whsec_'.length));

  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(): Promise<OrderEventReceiver> {
    let self: OrderEventReceiver | undefined;
    const server = createServer((req, res) => {
      void self?.handle(req, res).then(({ status }) => res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new OrderEventReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/order-events`);
    return self;
  }

  /** Each event id once, in the order of its first 2xx (what a shop deduplicating on webhook-id keeps). */
  accepted(): Received[] {
    const seen = new Set<string>();
    return this.received.filter((r) => r.answered < 300 && !seen.has(r.id) && seen.add(r.id));
  }

  acceptedFor(orderId: string): Received[] {
    return this.accepted().filter((r) => r.data.id === orderId);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<{ status: number }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    let event: Received;
    try {
      event = this.webhook.verify(body, req.headers as Record<string, string>) as Received;
    } catch (err) {
      this.badSignatures.push(`${String(req.headers['webhook-id'])}: ${(err as Error).message}`);
      return { status: 400 };
    }
    if (event.id !== req.headers['webhook-id']) this.badSignatures.push(`${event.id}: webhook-id header is ${String(req.headers['webhook-id'])}`);
    if (this.inFlight.has(event.id)) this.overlaps.push(event.id);
    else if (this.ordersInFlight.has(event.data.id)) this.orderOverlaps.push(event.id);
    this.inFlight.add(event.id);
    this.ordersInFlight.add(event.data.id);
    // A sender that gave up waiting (its timeout) closes the connection: that delivery is over for both sides.
    let gone = false;
    const release = () => {
      this.inFlight.delete(event.id);
      this.ordersInFlight.delete(event.data.id);
    };
    res.once('close', () => {
      if (!res.writableFinished) gone = true;
      release();
    });
    const { status, delayMs } = this.answer(event);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    // An answer nobody waited for does not count as accepted (499, as nginx logs it).
    this.received.push({ ...event, answered: gone ? 499 : status, at: Date.now() });
    if (!gone) release();
    return { status };
  }
}

/** Problems with one order's accepted events: sequence not 1..n in arrival order, or types not following the history. */
export function sequenceProblems(events: Received[], history: Array<{ to: string }>): string | null {
  const sequences = events.map((e) => e.sequence);
  const expected = history.map((_, i) => i + 1);
  if (JSON.stringify(sequences) !== JSON.stringify(expected)) return `sequences ${sequences.join(',')} (expected ${expected.join(',')})`;
  const types = events.map((e) => e.type);
  const wanted = history.map((h) => `order.${h.to}`);
  if (JSON.stringify(types) !== JSON.stringify(wanted)) return `types ${types.join(',')} (expected ${wanted.join(',')})`;
  return null;
}
