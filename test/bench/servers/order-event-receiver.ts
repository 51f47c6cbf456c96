import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/**
 * The shop's end of order events for the bench (BENCH_ORDER_EVENTS=1), in a
 * process of its own so it takes no CPU from the load generator: answers 200
 * at once, keeps each event id's first arrival and its age then (wall clock,
 * ms since the event's createdAt), and verifies one request in VERIFY_EVERY
 * with standardwebhooks (a bad one is counted). GET /stats returns all that.
 */
const VERIFY_EVERY = 50;
const webhook = new Webhook((process.env.ORDER_EVENTS_SECRET as string).slice('whsec_'.length));
const firstSeen = new Map<string, [number, number]>();
let requests = 0;
let badSignatures = 0;

const server = createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requests, badSignatures, firstSeen: [...firstSeen.values()] }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    requests++;
    const id = String(req.headers['webhook-id']);
    const body = Buffer.concat(chunks).toString('utf8');
    if (requests % VERIFY_EVERY === 1) {
      try {
        webhook.verify(body, req.headers as Record<string, string>);
      } catch {
        badSignatures++;
      }
    }
    if (!firstSeen.has(id)) {
      const createdAt = /"createdAt":"([^"]+)"/.exec(body)?.[1];
      const now = Date.now();
      firstSeen.set(id, [now, createdAt ? now - Date.parse(createdAt) : NaN]);
    }
    res.writeHead(200).end();
  });
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
