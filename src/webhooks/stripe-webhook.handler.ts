import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Stripe from 'stripe';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { STATUS_BY_CODE, errorBody } from '../common/errors/http-exception.filter';
import { requestIdFor } from '../logging/logging.module';
import { Metrics } from '../metrics/metrics';
import { WebhookInbox } from './webhook-inbox.service';
import { WebhookGate } from './webhook-gate';
import { createdInRange, precheckSignedRequest } from './signature-precheck';

const WEBHOOK_PATH = '/webhooks/stripe';
/** Largest request body accepted, here and by the app's JSON parser (bootstrap): a Stripe event is a few kB. */
export const MAX_BODY_BYTES = 256 * 1024;
const ACCEPTED = Buffer.from('{"received":true}');
const TIMESTAMP = /(?:^|,)\s*t=(\d+)(?:,|$)/;

/**
 * POST /webhooks/stripe: verify -> inbox -> 2xx (the inbox queues the job). Nothing else
 * happens here (the queue does the work), and verified deliveries are never
 * throttled: Stripe sends bursts, and refusing them only delays money. Senders
 * of deliveries that fail verification are (WebhookGate).
 *
 * It answers at the HTTP server's front door (mounted by bootstrap.ts with
 * mountWebhookRoute), not through Express and Nest's router: this route takes
 * the PSP's bursts, and the generic stack (body parsers, router layers,
 * per-request logger) cost more than the work itself. It keeps the API's
 * error shape (errorBody) and request-id rule (requestIdFor).
 */
@Injectable()
export class StripeWebhookHandler {
  private readonly logger = new Logger(StripeWebhookHandler.name);
  /** The SDK's signature check; it needs no API client. */
  private readonly webhooks = Stripe.webhooks;
  private readonly secrets: string[];
  private readonly tolerance: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly inbox: WebhookInbox,
    private readonly metrics: Metrics,
    private readonly gate: WebhookGate,
  ) {
    this.secrets = config.stripe.webhookSecrets;
    this.tolerance = config.webhookToleranceSeconds;
  }

  /** Handles one request end to end; never throws. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const requestId = requestIdFor(req, res);
    // The allowlist and the throttle of failing senders answer before anything is read.
    const sender = this.gate.admit(req, res);
    if (sender === undefined) return;
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_BODY_BYTES) return this.refuse(res, requestId, 413, 'Request body is too large', 'too_large', req);
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        refused = true;
        this.refuse(res, requestId, 413, 'Request body is too large', 'too_large', req);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) void this.receive(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size), req.headers['stripe-signature'], res, requestId, sender);
    });
    req.on('error', () => res.destroy());
  }

  private async receive(raw: Buffer, signature: string | string[] | undefined, res: ServerResponse, requestId: string, sender: string): Promise<void> {
    let event: Stripe.Event;
    try {
      if (raw.length === 0) throw this.reject('malformed', 'The body must be the JSON event exactly as the PSP sent it');
      event = this.verify(raw, typeof signature === 'string' ? signature : undefined);
    } catch (err) {
      this.gate.failed(sender);
      const status = err instanceof DomainError ? STATUS_BY_CODE[err.code] : 400;
      return this.refuse(res, requestId, status, (err as Error).message);
    }
    this.gate.verified(sender);
    try {
      await this.inbox.accept({ id: event.id, type: event.type, created: event.created }, raw.toString('utf8'), 'webhook');
    } catch (err) {
      // Not stored: a 5xx makes the PSP retry, so the event cannot be lost.
      return this.refuse(res, requestId, 503, 'The event could not be stored; retry later', 'storage', undefined, { eventId: event.id, error: (err as Error).message });
    }
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': ACCEPTED.length });
    res.end(ACCEPTED);
  }

  /** Checks the signature against every configured secret (several while rotating) before reading anything. */
  private verify(raw: Buffer, signature: string | undefined): Stripe.Event {
    if (typeof signature !== 'string' || signature.length === 0) throw this.reject('signature', 'Missing Stripe-Signature header');
    const refused = precheckSignedRequest(raw, signature);
    if (refused) throw this.reject(refused.reason, refused.message);
    const timestamp = TIMESTAMP.exec(signature);
    if (!timestamp) throw this.reject('signature', 'Malformed Stripe-Signature header');
    // The SDK only refuses old timestamps; one far ahead is as suspect (a replay prepared in advance).
    if (Number(timestamp[1]) > Date.now() / 1000 + this.tolerance) throw this.reject('stale', 'Stripe-Signature timestamp is in the future');
    let stale = false;
    for (const secret of this.secrets) {
      let event: Stripe.Event;
      try {
        event = this.webhooks.constructEvent(raw, signature, secret, this.tolerance);
      } catch (err) {
        if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
          stale ||= /tolerance/i.test(err.message);
          continue;
        }
        // The signature matched, so these are the PSP's bytes, but not JSON.
        throw this.reject('malformed', 'The signed body is not valid JSON');
      }
      if (!event || typeof event.id !== 'string' || typeof event.type !== 'string' || !createdInRange(event.created)) {
        throw this.reject('malformed', 'The signed body is not a PSP event (id, type, created in seconds between 1970 and 9999)');
      }
      return event;
    }
    throw stale ? this.reject('stale', 'Stripe-Signature timestamp is older than the tolerance') : this.reject('signature', 'No valid signature for this body');
  }

  /** Answers an error in the API's shape, and logs it once (with `detail`, what the log needs beyond the answer). */
  private refuse(res: ServerResponse, requestId: string, status: number, message: string, reason?: string, req?: IncomingMessage, detail?: Record<string, unknown>): void {
    if (reason) this.metrics.webhooksRejected.inc({ reason });
    const line = { msg: 'webhook refused', status, requestId, reason: message, ...detail };
    if (status >= 500) this.logger.error(line);
    else this.logger.warn(line);
    const body = JSON.stringify(errorBody(status, message));
    // An oversized body is not read: close the connection rather than drain it.
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...(req ? { Connection: 'close' } : {}) });
    res.end(body);
    if (req) req.resume();
  }

  private reject(reason: string, message: string): DomainError {
    this.metrics.webhooksRejected.inc({ reason });
    return new DomainError(ErrorCode.Validation, message);
  }
}


/**
 * Puts the webhook route in front of the app's request handler: POST
 * /webhooks/stripe goes straight to the handler, everything else to
 * Express and Nest as before. Call before the server listens.
 */
export function mountWebhookRoute(server: import('node:http').Server, handler: StripeWebhookHandler): void {
  const app = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && isWebhookPath(req.url)) return handler.handle(req, res);
    for (const listener of app) listener.call(server, req, res);
  });
}

function isWebhookPath(url: string | undefined): boolean {
  if (!url || !url.startsWith(WEBHOOK_PATH)) return false;
  const rest = url.slice(WEBHOOK_PATH.length);
  return rest === '' || rest === '/' || rest.startsWith('?');
}
