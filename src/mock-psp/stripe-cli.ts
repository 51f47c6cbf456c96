import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { parse as parseQuery } from 'qs';
import Stripe from 'stripe';
import { WebSocket, WebSocketServer } from 'ws';
import { StripeApiError } from './errors';
import { toStringList } from './params';
import { newId } from './ids';
import { signPayload } from './webhook-delivery';

/**
 * `stripe listen` support: the official Stripe CLI opens a session with
 * `POST /v1/stripecli/sessions`, connects a websocket to the URL the answer
 * names, and receives every event as a `webhook_event` message carrying the
 * exact payload and the headers (Stripe-Signature included) it must POST to
 * `--forward-to`. It acks each message (`event_ack`) and reports the local
 * endpoint's answer (`webhook_response`).
 *
 * Facts measured against stripe-cli 1.52.0 (and kept true by
 * test/stripe-cli/listen-protocol.e2e-spec.ts, which drives the real CLI):
 * - the session request carries no event filter; the CLI applies `--events`
 *   itself, so every session receives every event;
 * - `endpoint.api_version` must be null or the CLI drops the event;
 * - `reconnect_delay` is how often the CLI resets its connection, so it is
 *   long here, and events emitted while a session has no open socket are
 *   held and sent when it reconnects;
 * - a handshake refused with "Unknown WebSocket ID." makes the CLI open a new
 *   session, which is what a CLI that outlived a mock restart needs.
 */

export const STRIPE_CLI_SESSIONS_PATH = '/v1/stripecli/sessions';
export const STRIPE_CLI_WEBSOCKET_PATH = '/v1/stripecli/websocket';

/** The message the CLI recognises to open a fresh session instead of retrying the same id. */
const UNKNOWN_ID_MESSAGE = 'Unknown WebSocket ID.';
/** Stripe's feature name for snapshot-event sessions; the CLI echoes it in the websocket query. */
const WEBHOOKS_FEATURE = 'webhook-payloads';
const RECONNECT_DELAY_SECONDS = 24 * 60 * 60;
/** Events held for a session while its CLI is between sockets. */
const MAX_HELD_MESSAGES = 1000;
/** Sessions that were never connected, or lost their CLI, are forgotten after this long. */
const IDLE_SESSION_MS = 60 * 60 * 1000;
/** The close reason the CLI gives when it exits, as opposed to its periodic resets. */
const CLI_EXIT_REASON = 'Connection Done';
/** How long a new session's events are held for a CLI that has yet to connect. */
const FIRST_CONNECT_GRACE_MS = 60 * 1000;
/** Acknowledgement records kept for inspection. */
const MAX_DELIVERY_RECORDS = 5000;

export type StripeCliEventListener = (event: Stripe.Event, payload: string) => void;

export interface StripeCliOptions {
  /**
   * Given, `attach()` takes websocket upgrades from this server itself. Leave it
   * out when the host server dispatches upgrades (call `handleUpgrade`).
   */
  server?: Server;
  webhookSecret: string;
  subscribe(listener: StripeCliEventListener): () => void;
  apiKeyOk(authHeader?: string): boolean;
  /** Printed by the CLI as "You are using Stripe API Version [...]"; defaults to the installed SDK's. */
  apiVersion?: string;
}

/** What became of one event sent to one CLI session. */
export interface StripeCliDelivery {
  sessionId: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  acked: boolean;
  /** The local endpoint's answer, as reported by the CLI (only for events its filter let through). */
  response?: { status: number; forwardUrl: string; body: string };
}

/** The `webhook_event` message, exactly as the CLI reads it. */
export interface WebhookEventMessage {
  type: 'webhook_event';
  webhook_id: string;
  webhook_conversation_id: string;
  event_payload: string;
  http_headers: Record<string, string>;
  endpoint: { api_version: string | null };
}

interface PendingEvent {
  webhookId: string;
  eventId: string;
  eventType: string;
  payload: string;
}

interface Session {
  id: string;
  createdAt: number;
  lastActive: number;
  /** Whether its CLI ever connected; `--print-secret` sessions never do. */
  connected: boolean;
  sockets: Set<WebSocket>;
  /** Waiting for a socket. */
  held: PendingEvent[];
  /** Sent on a socket and not yet acked: resent if that socket goes away first. */
  unacked: Map<string, { event: PendingEvent; socket: WebSocket }>;
}

function stripeError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(new StripeApiError(status, 'invalid_request_error', message)));
}

export class StripeCliSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly deliveryLog = new Map<string, StripeCliDelivery>();
  private readonly wss = new WebSocketServer({ noServer: true });
  private unsubscribe?: () => void;
  private closed = false;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Someone else's upgrade path is left to them; with nobody else listening, it is refused.
    if (!this.handleUpgrade(req, socket, head) && this.options.server?.listenerCount('upgrade') === 1) {
      refuseUpgrade(socket, 404, { error: { message: 'Not found.' } });
    }
  };

  constructor(private readonly options: StripeCliOptions) {}

  /** Starts taking events from the mock (and upgrades from `server`, if given). Idempotent. */
  attach(): this {
    if (this.unsubscribe || this.closed) return this;
    this.options.server?.on('upgrade', this.onUpgrade);
    this.unsubscribe = this.options.subscribe((event, payload) => this.publish(event, payload));
    return this;
  }

  /** Closes every CLI connection and forgets every session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.options.server?.off('upgrade', this.onUpgrade);
    for (const session of this.sessions.values()) {
      for (const socket of session.sockets) socket.terminate();
    }
    this.sessions.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  /** True for the request `handleSession` answers. */
  static isSessionRequest(method: string | undefined, path: string): boolean {
    return method === 'POST' && path.split('?')[0] === STRIPE_CLI_SESSIONS_PATH;
  }

  /** For a host server's request chain: answers `POST /v1/stripecli/sessions` and returns true, else false. */
  handleRequest(req: IncomingMessage, res: ServerResponse, body: string): boolean {
    if (!StripeCliSessions.isSessionRequest(req.method, req.url ?? '')) return false;
    this.handleSession(req, res, body);
    return true;
  }

  /**
   * `POST /v1/stripecli/sessions`: `body` is the raw form body. Answers what `stripe listen` needs to connect, and the
   * signing secret it prints (`--print-secret` prints only that).
   */
  handleSession(req: IncomingMessage, res: ServerResponse, body: string): void {
    if (!this.options.apiKeyOk(req.headers.authorization)) {
      stripeError(res, 401, 'Invalid API Key provided.');
      return;
    }
    const features = toStringList(parseQuery(body).websocket_features);
    if (features.length > 0 && !features.includes('webhooks')) {
      stripeError(res, 400, `The mock PSP only streams snapshot webhook events, not ${features.join(', ')}.`);
      return;
    }
    this.forgetIdleSessions();
    const id = newId('cliws');
    const now = Date.now();
    this.sessions.set(id, { id, createdAt: now, lastActive: now, connected: false, sockets: new Set(), held: [], unacked: new Map() });
    const apiVersion = this.options.apiVersion ?? Stripe.API_VERSION;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({
        websocket_url: `ws://${this.hostFor(req)}${STRIPE_CLI_WEBSOCKET_PATH}`,
        websocket_id: id,
        websocket_authorized_feature: WEBHOOKS_FEATURE,
        secret: this.options.webhookSecret,
        reconnect_delay: RECONNECT_DELAY_SECONDS,
        display_connect_filter_warning: false,
        default_version: apiVersion,
        latest_version: apiVersion,
      }),
    );
  }

  /** Sessions with at least one open socket. */
  connectedSessions(): number {
    let count = 0;
    for (const session of this.sessions.values()) {
      if (openSocket(session)) count++;
    }
    return count;
  }

  /** Oldest first: which events went to which CLI, and what the CLI said back. */
  deliveries(): StripeCliDelivery[] {
    return [...this.deliveryLog.values()];
  }

  /** The websocket lives where the CLI reached the API: its Host header, else the socket's own address. */
  private hostFor(req: IncomingMessage): string {
    const host = req.headers.host;
    if (host && /^[\w.:[\]-]+$/.test(host)) return host;
    const { localAddress, localPort } = req.socket;
    const address = !localAddress || localAddress === '::' || localAddress === '0.0.0.0' ? '127.0.0.1' : localAddress;
    return address.includes(':') ? `[${address}]:${localPort}` : `${address}:${localPort}`;
  }

  /**
   * For a host server's upgrade dispatch: takes the CLI's websocket (or refuses
   * an unknown session id) and returns true; returns false for other paths.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://mock');
    if (url.pathname !== STRIPE_CLI_WEBSOCKET_PATH) return false;
    if (this.closed) {
      refuseUpgrade(socket, 503, { error: { message: 'The mock PSP is stopping.' } });
      return true;
    }
    const header = req.headers['websocket-id'];
    const id = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('websocket_id') ?? '';
    const session = this.sessions.get(id);
    if (!session) {
      refuseUpgrade(socket, 400, { error: { type: 'invalid_request_error', message: UNKNOWN_ID_MESSAGE } });
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(session, ws));
    return true;
  }

  private connected(session: Session, ws: WebSocket): void {
    session.connected = true;
    session.sockets.add(ws);
    session.lastActive = Date.now();
    ws.on('message', (data, isBinary) => {
      if (!isBinary) this.received(session, data.toString());
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', (_code, reason) => {
      // The CLI says "Connection Done" when it exits (^C) and "Resetting the connection" when it redials.
      if (reason.toString() === CLI_EXIT_REASON) this.sessions.delete(session.id);
      this.disconnected(session, ws);
    });
    this.flush(session);
  }

  private disconnected(session: Session, ws: WebSocket): void {
    session.sockets.delete(ws);
    session.lastActive = Date.now();
    // What that socket never acknowledged goes out again, ahead of what was waiting.
    const resend: PendingEvent[] = [];
    for (const [webhookId, entry] of session.unacked) {
      if (entry.socket === ws) {
        resend.push(entry.event);
        session.unacked.delete(webhookId);
      }
    }
    if (resend.length > 0) session.held.unshift(...resend);
    if (!this.sessions.has(session.id)) return;
    this.flush(session);
  }

  private received(session: Session, text: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    session.lastActive = Date.now();
    const webhookId = typeof message.webhook_id === 'string' ? message.webhook_id : undefined;
    if (!webhookId) return;
    const record = this.deliveryLog.get(webhookId);
    if (message.type === 'event_ack') {
      session.unacked.delete(webhookId);
      if (record) record.acked = true;
    } else if (message.type === 'webhook_response') {
      session.unacked.delete(webhookId);
      if (record) {
        record.acked = true;
        record.response = {
          status: typeof message.status === 'number' ? message.status : 0,
          forwardUrl: typeof message.forward_url === 'string' ? message.forward_url : '',
          body: typeof message.body === 'string' ? message.body : '',
        };
      }
    }
  }

  private publish(event: Stripe.Event, payload: string): void {
    for (const session of this.sessions.values()) {
      // A session whose CLI has not connected a minute after asking (`--print-secret`) is not listening;
      // one that is about to connect gets what happened in the meantime.
      if (!session.connected && Date.now() - session.createdAt > FIRST_CONNECT_GRACE_MS) continue;
      const pending: PendingEvent = { webhookId: newId('we'), eventId: event.id, eventType: event.type, payload };
      this.record(session, pending);
      session.held.push(pending);
      if (session.held.length > MAX_HELD_MESSAGES) session.held.splice(0, session.held.length - MAX_HELD_MESSAGES);
      this.flush(session);
    }
  }

  private flush(session: Session): void {
    const ws = openSocket(session);
    if (!ws) return;
    while (session.held.length > 0) {
      const pending = session.held.shift() as PendingEvent;
      session.unacked.set(pending.webhookId, { event: pending, socket: ws });
      ws.send(JSON.stringify(this.message(pending)));
    }
  }

  /** Signed when sent, so a held event does not arrive with a stale timestamp. */
  private message(pending: PendingEvent): WebhookEventMessage {
    return {
      type: 'webhook_event',
      webhook_id: pending.webhookId,
      webhook_conversation_id: newId('wc'),
      event_payload: pending.payload,
      http_headers: {
        'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
        'Content-Type': 'application/json; charset=utf-8',
        'Cache-Control': 'no-cache',
        Accept: '*/*; q=0.5, application/xml',
        'Stripe-Signature': signPayload(pending.payload, this.options.webhookSecret),
      },
      endpoint: { api_version: null },
    };
  }

  private record(session: Session, pending: PendingEvent): void {
    this.deliveryLog.set(pending.webhookId, {
      sessionId: session.id,
      webhookId: pending.webhookId,
      eventId: pending.eventId,
      eventType: pending.eventType,
      acked: false,
    });
    if (this.deliveryLog.size > MAX_DELIVERY_RECORDS) {
      const oldest = this.deliveryLog.keys().next().value;
      if (oldest !== undefined) this.deliveryLog.delete(oldest);
    }
  }

  private forgetIdleSessions(): void {
    const cutoff = Date.now() - IDLE_SESSION_MS;
    for (const [id, session] of this.sessions) {
      if (session.sockets.size === 0 && session.lastActive < cutoff) this.sessions.delete(id);
    }
  }
}

function openSocket(session: Session): WebSocket | undefined {
  // Only an OPEN socket: one the CLI is closing (its periodic reset) no longer reads.
  for (const ws of session.sockets) {
    if (ws.readyState === WebSocket.OPEN) return ws;
  }
  return undefined;
}

function refuseUpgrade(socket: Duplex, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  const reason = ({ 400: 'Bad Request', 404: 'Not Found', 503: 'Service Unavailable' } as Record<number, string>)[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}


