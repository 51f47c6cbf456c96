import http from 'node:http';
import { AddressInfo } from 'node:net';
import qs from 'qs';
import type Stripe from 'stripe';
import { apiRoutes, expand, Route } from './api-routes';
import { AuthorizationWindows, lapseAuthorization } from './capture';
import { Catalog } from './catalog';
import { CheckoutPage } from './checkout-page';
import { checkoutRoutes } from './checkout-routes';
import { CheckoutDesk } from './checkout-sessions';
import { StripeApiError } from './errors';
import { EventLog, MOCK_API_VERSION } from './events';
import { newId } from './ids';
import { IdempotencyStore } from './idempotency';
import { toStringList } from './params';
import { PspState } from './psp-state';
import { Retention } from './retention';
import { DeliveryFaults, WebhookDelivery } from './webhook-delivery';
import { StripeCliSessions } from './stripe-cli';
import { webhookEndpointRoutes, WebhookEndpoints } from './webhook-endpoints';
import { DEFAULT_MOCK_PSP_PORT, DEFAULT_MOCK_WEBHOOK_SECRET, MockPspOptions } from './mock-psp-options';

export { signPayload } from './webhook-delivery';
export type { DeliveryFaults } from './webhook-delivery';

export { DEFAULT_MOCK_PSP_PORT, DEFAULT_MOCK_WEBHOOK_SECRET } from './mock-psp-options';
export type { MockPspOptions } from './mock-psp-options';

export interface MockPspStats {
  requests: number;
  /** Requests per route, keyed like `POST /v1/payment_intents` or `GET /v1/events`. */
  byRoute: Record<string, number>;
}

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * A stateful Stripe-compatible PSP: the official SDK and the Stripe CLI talk
 * to it unchanged. It shares nothing with the backend but the wire.
 */
export class MockPsp {
  readonly webhookSecret: string;
  private readonly log = new EventLog();
  private readonly state: PspState;
  private readonly delivery: WebhookDelivery;
  /** Endpoints registered with POST /v1/webhook_endpoints, each delivered to besides MOCK_PSP_FORWARD_TO. */
  private readonly endpoints: WebhookEndpoints;
  private readonly idempotency = new IdempotencyStore();
  private readonly routes: Route[];
  private readonly scheduled = new Set<NodeJS.Timeout>();
  private readonly server: http.Server;
  private readonly stripeCli: StripeCliSessions;
  private readonly checkout: CheckoutDesk;
  private readonly checkoutPage: CheckoutPage;
  private stats_: MockPspStats = { requests: 0, byRoute: {} };
  private stopped = false;
  private readonly timeScale: number;
  private readonly latencyMs: number;
  /** Holds PaymentIntent creations this long (a PSP that hangs); see stallPaymentIntentCreation. */
  private createStallMs = 0;
  private readonly retention: Retention;

  private constructor(private readonly options: MockPspOptions) {
    this.webhookSecret = options.webhookSecret ?? DEFAULT_MOCK_WEBHOOK_SECRET;
    this.timeScale = options.timeScale ?? 1;
    this.latencyMs = options.latencyMs ?? 0;
    this.state = new PspState(this.log, (ms, action) => this.schedule(ms, action));
    this.state.authorizationWindows = new AuthorizationWindows(this.timeScale, (id) =>
      lapseAuthorization(this.state.paymentIntents, this.state.charges, this.log, id),
    );
    this.delivery = new WebhookDelivery({ secret: this.webhookSecret, timeScale: this.timeScale, maxAttempts: options.maxDeliveryAttempts ?? 8 });
    this.delivery.setForwardTo(options.forwardTo);
    this.delivery.setFaults(options.faults ?? {}, options.seed);
    this.log.subscribe((event, payload) => this.delivery.enqueue(event, payload));
    this.endpoints = new WebhookEndpoints({ timeScale: this.timeScale, maxAttempts: options.maxDeliveryAttempts ?? 8 });
    this.endpoints.setFaults(options.faults ?? {}, options.seed);
    this.log.subscribe((event, payload) => this.endpoints.deliver(event, payload));
    // delivery_success=false lists an event while any target still lacks it.
    const deliveryStates = { state: (eventId: string) => this.undeliveredState(eventId) ?? this.delivery.state(eventId) };
    const catalog = new Catalog(this.log);
    this.checkout = new CheckoutDesk(this.state, catalog, this.log, { timeScale: this.timeScale, baseUrl: () => this.url });
    this.checkoutPage = new CheckoutPage(this.checkout);
    this.routes = [
      ...apiRoutes(this.state, deliveryStates),
      ...webhookEndpointRoutes(this.endpoints),
      ...checkoutRoutes(this.checkout, catalog, (id) => this.state.customer(id)),
    ];
    this.retention = new Retention(this.timeScale, { idempotency: this.idempotency, events: this.log, delivery: this.delivery, state: this.state, checkout: this.checkout });
    this.retention.start();
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 65_000;
    this.server.on('upgrade', (req, socket, head) => {
      if (!this.stripeCli.handleUpgrade(req, socket, head)) socket.destroy();
    });
    // `stripe listen --api-base <mock>`: the CLI's session and websocket, fed every event this mock emits.
    this.stripeCli = new StripeCliSessions({
      webhookSecret: this.webhookSecret,
      subscribe: (listener) => this.log.subscribe(listener),
      apiKeyOk: (header) => isTestKey(MockPsp.apiKeyFrom(header)),
      apiVersion: MOCK_API_VERSION,
    }).attach();
  }

  static async start(options: MockPspOptions = {}): Promise<MockPsp> {
    const mock = new MockPsp(options);
    await new Promise<void>((resolve, reject) => {
      mock.server.once('error', reject);
      mock.server.listen(options.port ?? DEFAULT_MOCK_PSP_PORT, options.host ?? '127.0.0.1', () => resolve());
    });
    return mock;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const host = this.options.host && this.options.host !== '0.0.0.0' && this.options.host !== '::' ? this.options.host : '127.0.0.1';
    return `http://${host}:${this.port}`;
  }

  setForwardTo(url: string | undefined): void {
    this.delivery.setForwardTo(url);
  }

  /** Makes every PaymentIntent creation from now on answer only after `ms` (0: at once again). */
  stallPaymentIntentCreation(ms: number): void {
    this.createStallMs = ms;
  }

  setFaults(faults: DeliveryFaults, seed?: number): void {
    this.delivery.setFaults(faults, seed);
    this.endpoints.setFaults(faults, seed);
  }

  /** Every event emitted so far, oldest first. */
  events(): readonly Stripe.Event[] {
    return this.log.all();
  }


  /** How much the mock holds now (what retention bounds), for soak runs and tests. */
  sizes(): Record<string, number> {
    return {
      events: this.log.all().length,
      idempotencyKeys: this.idempotency.size,
      deliveryRecords: this.delivery.recordCount,
      paymentIntents: this.state.paymentIntents.size,
      charges: this.state.charges.size,
      refunds: this.state.refunds.size,
      paymentMethods: this.state.paymentMethods.size,
      authorizationWindows: this.state.authorizationWindows?.size ?? 0,
      checkoutSessions: this.checkout.sessions.size,
      checkoutExpiries: this.checkout.pendingExpiries,
    };
  }

  stats(): MockPspStats {
    return { requests: this.stats_.requests, byRoute: { ...this.stats_.byRoute } };
  }

  resetStats(): void {
    this.stats_ = { requests: 0, byRoute: {} };
  }

  /** Delivery bookkeeping for one event (attempts, delivered, dropped): to the forwarding URL, or to a registered endpoint. */
  deliveryState(eventId: string, webhookEndpointId?: string) {
    return webhookEndpointId ? this.endpoints.state(webhookEndpointId, eventId) : this.delivery.state(eventId);
  }

  private undeliveredState(eventId: string) {
    const forward = this.delivery.state(eventId);
    return forward && !forward.delivered ? forward : this.endpoints.undelivered(eventId);
  }

  completeAuthentication(paymentIntentId: string, outcome: 'succeed' | 'fail'): Stripe.PaymentIntent {
    return this.state.completeAuthentication(paymentIntentId, outcome);
  }

  /** Sends one event to the forwarding URL again, bypassing faults. */
  redeliver(eventId: string): void {
    const event = this.log.get(eventId);
    if (!event) throw new Error(`No such event: ${eventId}`);
    this.delivery.redeliver(event, JSON.stringify(event, null, 2));
  }

  /** Resolves once no automatic change is scheduled and no delivery is waiting, buffered or in flight. */
  async idle(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.scheduled.size > 0 || this.delivery.busy || this.endpoints.busy) {
      if (Date.now() > deadline) throw new Error(`Mock PSP still busy after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }



  /** Whether an Authorization header carries a test secret key (Bearer, or Basic with the key as user). */
  static apiKeyFrom(header: string | undefined): string | undefined {
    if (!header) return undefined;
    const bearer = /^Bearer\s+(\S+)$/i.exec(header);
    if (bearer) return bearer[1];
    const basic = /^Basic\s+(\S+)$/i.exec(header);
    if (basic) return Buffer.from(basic[1], 'base64').toString('utf8').split(':')[0];
    return undefined;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.scheduled) clearTimeout(timer);
    this.scheduled.clear();
    this.state.authorizationWindows?.stop();
    this.checkout.stop();
    this.retention.stop();
    this.delivery.stop();
    this.endpoints.stop();
    await this.stripeCli.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private schedule(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.scheduled.delete(timer);
      if (!this.stopped) action();
    }, ms * this.timeScale);
    this.scheduled.add(timer);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = newId('req', 14);
    res.setHeader('Request-Id', requestId);
    res.setHeader('Stripe-Version', (req.headers['stripe-version'] as string) ?? MOCK_API_VERSION);
    let body: string;
    try {
      body = await readBody(req);
    } catch (err) {
      return send(res, (err as StripeApiError).statusCode ?? 400, err);
    }
    if (this.stripeCli.handleRequest(req, res, body)) return;
    // The hosted Checkout page is for the customer's browser, which carries no API key.
    if (this.checkoutPage.handle(req, res, body)) return;

    const url = new URL(req.url ?? '/', 'http://mock');
    const method = req.method ?? 'GET';
    let route: Route | undefined;
    let path: Record<string, string> = {};
    for (const candidate of this.routes) {
      const match = candidate.method === method ? candidate.regex.exec(url.pathname) : null;
      if (match) {
        route = candidate;
        path = { ...match.groups };
        break;
      }
    }
    this.stats_.requests += 1;
    const routeKey = route ? `${method} ${route.pattern}` : `${method} ${url.pathname}`;
    this.stats_.byRoute[routeKey] = (this.stats_.byRoute[routeKey] ?? 0) + 1;

    const key = MockPsp.apiKeyFrom(req.headers.authorization);
    if (!key) {
      return send(res, 401, new StripeApiError(401, 'invalid_request_error', "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."));
    }
    if (!isTestKey(key)) {
      const shown = key.length > 12 ? `${key.slice(0, 8)}${'*'.repeat(key.length - 12)}${key.slice(-4)}` : '***';
      return send(res, 401, new StripeApiError(401, 'invalid_request_error', `Invalid API Key provided: ${shown}. The mock PSP accepts test keys (sk_test_…).`));
    }
    if (!route) {
      return send(res, 404, new StripeApiError(404, 'invalid_request_error', `Unrecognized request URL (${method}: ${url.pathname}). The mock PSP serves a subset of Stripe's API; see the README.`));
    }

    let params: Record<string, unknown>;
    try {
      params = qs.parse(method === 'GET' ? url.search.slice(1) : body, { depth: 10, arrayLimit: 100, parameterLimit: 2000 }) as Record<string, unknown>;
    } catch {
      return send(res, 400, new StripeApiError(400, 'invalid_request_error', 'Invalid request: the body could not be parsed as form data.'));
    }
    const expandFields = toStringList(params.expand);

    const idempotencyKey = method === 'POST' ? (req.headers['idempotency-key'] as string | undefined) : undefined;
    if (idempotencyKey !== undefined) {
      try {
        const saved = this.idempotency.begin(key, idempotencyKey, `${method} ${url.pathname} ${body}`, this.retention.keysNotBefore());
        if (saved) {
          res.setHeader('Idempotent-Replayed', 'true');
          res.setHeader('Idempotency-Key', idempotencyKey);
          res.writeHead(saved.status, { 'Content-Type': 'application/json' });
          res.end(saved.body);
          return;
        }
      } catch (err) {
        return send(res, (err as StripeApiError).statusCode, err);
      }
      res.setHeader('Idempotency-Key', idempotencyKey);
    }

    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    if (this.createStallMs > 0 && method === 'POST' && url.pathname === '/v1/payment_intents') await new Promise((resolve) => setTimeout(resolve, this.createStallMs));

    let status = 200;
    let answer: unknown;
    let executed = true;
    try {
      const result = route.handle({ params, path, request: { id: requestId, idempotencyKey: idempotencyKey ?? null } });
      answer = expand(this.state, result, expandFields);
    } catch (err) {
      if (err instanceof StripeApiError) {
        status = err.statusCode;
        answer = err;
        // Like Stripe, a request rejected by validation never ran, so its key stays reusable.
        executed = !(status === 400 && (err.rejectedBeforeExecution || (typeof err.extra.code === 'string' && err.extra.code.startsWith('parameter_'))));
      } else {
        status = 500;
        answer = new StripeApiError(500, 'api_error', `The mock PSP failed: ${(err as Error).message}`);
      }
    }
    const text = JSON.stringify(answer, null, 2);
    if (idempotencyKey !== undefined) this.idempotency.finish(key, idempotencyKey, status, text, executed);
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(text);
  }
}

/** The mock takes any test secret or restricted key, as Stripe's test mode would take yours. */
function isTestKey(key: string | undefined): boolean {
  return key !== undefined && /^(sk|rk)_test_\w+$/.test(key);
}



function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body, null, 2));
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new StripeApiError(413, 'invalid_request_error', `Request body larger than ${MAX_BODY_BYTES} bytes.`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export { mockPspOptionsFromEnv } from './mock-psp-env';
