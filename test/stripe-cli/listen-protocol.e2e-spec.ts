import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import WebSocket from 'ws';
import { STRIPE_CLI_SESSIONS_PATH, StripeCliEventListener, StripeCliSessions } from '../../src/mock-psp/stripe-cli';
import { signPayload } from '../../src/mock-psp';
import { waitFor } from '../support/wait';
import { CliHome, CliProcess } from './cli';

/**
 * The `stripe listen` protocol on its own: the sessions module on a bare HTTP
 * server, driven by the real Stripe CLI, with a local endpoint that records
 * what the CLI forwards to it.
 */

const API_KEY = 'sk_test_settle_cli';
const SECRET = 'whsec_cli_protocol_0123456789';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

function event(type: string, extra: Record<string, unknown> = {}): { event: Stripe.Event; payload: string } {
  const id = `evt_${Math.random().toString(36).slice(2, 14)}`;
  const object = { id: `pi_${id.slice(4)}`, object: 'payment_intent', amount: 2000, currency: 'usd', status: 'succeeded' };
  const evt = {
    id,
    object: 'event',
    api_version: Stripe.API_VERSION,
    created: Math.floor(Date.now() / 1000),
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    ...extra,
  } as unknown as Stripe.Event;
  return { event: evt, payload: JSON.stringify(evt, null, 2) };
}

describe('stripe listen protocol (real Stripe CLI against the mock PSP sessions module)', () => {
  let api: Server;
  let hook: Server;
  let apiUrl: string;
  let hookUrl: string;
  let sessions: StripeCliSessions;
  const listeners = new Set<StripeCliEventListener>();
  const received: Received[] = [];
  const home = new CliHome();
  const emit = (e: { event: Stripe.Event; payload: string }): void => listeners.forEach((l) => l(e.event, e.payload));

  beforeAll(async () => {
    api = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        if (StripeCliSessions.isSessionRequest(req.method, req.url ?? '')) {
          sessions.handleSession(req, res, body);
        } else {
          res.writeHead(404, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: 'Unrecognized request URL' } }));
        }
      });
    });
    sessions = new StripeCliSessions({
      server: api,
      webhookSecret: SECRET,
      subscribe: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      apiKeyOk: (auth) => auth === `Bearer ${API_KEY}`,
    }).attach();
    apiUrl = `http://127.0.0.1:${await listen(api)}`;

    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"received":true}');
      });
    });
    hookUrl = `http://127.0.0.1:${await listen(hook)}/webhooks/stripe`;
  });

  afterAll(async () => {
    await sessions.close();
    await close(api);
    await close(hook);
    home.remove();
  });

  beforeEach(() => {
    received.length = 0;
  });

  async function startListen(...extra: string[]): Promise<CliProcess> {
    const cli = home.start(['listen', '--skip-update', '--api-base', apiUrl, '--api-key', API_KEY, '--forward-to', hookUrl, ...extra]);
    await cli.waitFor(new RegExp(`Ready! .*Your webhook signing secret is ${SECRET}`));
    await waitFor(async () => sessions.connectedSessions() > 0, 'the CLI to connect');
    return cli;
  }

  it('forwards an event with the exact payload and the Stripe-Signature the mock computed', async () => {
    const cli = await startListen('--events', 'payment_intent.succeeded');
    try {
      const e = event('payment_intent.succeeded');
      emit(e);
      await waitFor(async () => received.length === 1, 'the forwarded event');
      const [got] = received;
      expect(got.body).toBe(e.payload);
      const signature = String(got.headers['stripe-signature']);
      const t = Number(/t=(\d+)/.exec(signature)?.[1]);
      expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(60);
      expect(signature).toBe(signPayload(e.payload, SECRET, t));
      // The official SDK accepts it, as the backend's verifier would.
      expect(Stripe.webhooks.constructEvent(got.body, signature, SECRET).id).toBe(e.event.id);
      expect(got.headers['content-type']).toBe('application/json; charset=utf-8');

      await cli.waitFor(new RegExp(`<--\\s+\\[200\\] POST ${hookUrl} \\[${e.event.id}\\]`));
      const delivery = await waitFor(async () => sessions.deliveries().find((d) => d.eventId === e.event.id && d.response), 'the webhook_response');
      expect(delivery).toMatchObject({ eventType: 'payment_intent.succeeded', acked: true, response: { status: 200, forwardUrl: hookUrl } });
    } finally {
      await cli.stop();
    }
  });

  it('lets the CLI filter by --events: other types are acknowledged but not forwarded', async () => {
    const cli = await startListen('--events', 'payment_intent.succeeded');
    try {
      const skipped = event('charge.succeeded');
      const wanted = event('payment_intent.succeeded');
      emit(skipped);
      emit(wanted);
      await waitFor(async () => received.length === 1 && sessions.deliveries().some((d) => d.eventId === skipped.event.id && d.acked), 'the ack');
      await new Promise((r) => setTimeout(r, 300));
      expect(received.map((r) => JSON.parse(r.body).id)).toEqual([wanted.event.id]);
      expect(cli.output()).not.toContain(skipped.event.id);
    } finally {
      await cli.stop();
    }
  });

  it('forwards every type, Connect events included, with --all-snapshot', async () => {
    const cli = await startListen('--all-snapshot');
    try {
      const a = event('charge.refunded');
      const b = event('charge.dispute.created', { account: 'acct_1Connected' });
      emit(a);
      emit(b);
      await waitFor(async () => received.length === 2, 'both events');
      expect(received.map((r) => JSON.parse(r.body).id).sort()).toEqual([a.event.id, b.event.id].sort());
      await cli.waitFor(new RegExp(`--> connect charge.dispute.created \\[${b.event.id}\\]`));
    } finally {
      await cli.stop();
    }
  });

  it('prints only the signing secret with --print-secret', async () => {
    const result = await home.run(['listen', '--api-base', apiUrl, '--api-key', API_KEY, '--print-secret']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(SECRET);
  });

  it('refuses a session for a wrong API key', async () => {
    const res = await fetch(`${apiUrl}${STRIPE_CLI_SESSIONS_PATH}`, {
      method: 'POST',
      headers: { Authorization: 'Bearer sk_test_wrong_key', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'device_name=x&websocket_features[]=webhooks',
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
  });

  it('refuses a websocket for an unknown session id with the message that makes the CLI start over', async () => {
    const { port } = api.address() as AddressInfo;
    const outcome = await new Promise<{ status?: number; body: string }>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stripecli/websocket?websocket_feature=webhook-payloads`, {
        headers: { 'Websocket-Id': 'cliws_unknown' },
      });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      ws.on('open', () => resolve({ body: 'opened' }));
      ws.on('error', () => undefined);
    });
    expect(outcome.status).toBe(400);
    expect(JSON.parse(outcome.body).error.message).toBe('Unknown WebSocket ID.');
  });

  it('holds events while the CLI is between connections and sends them when it is back', async () => {
    const cli = await startListen('--all-snapshot');
    try {
      // Drop the CLI's socket from the server side; it redials on its own.
      const internals = sessions as unknown as { sessions: Map<string, { sockets: Set<{ terminate(): void }> }> };
      let dropped = 0;
      for (const s of internals.sessions.values()) {
        for (const ws of s.sockets) {
          ws.terminate();
          dropped += 1;
        }
      }
      // Something was really cut off, or the event below would simply arrive the normal way.
      expect(dropped).toBeGreaterThan(0);
      const e = event('payment_intent.succeeded');
      emit(e);
      await waitFor(async () => received.some((r) => JSON.parse(r.body).id === e.event.id), 'the held event', 30000);
    } finally {
      await cli.stop();
    }
  }, 45000);
});
