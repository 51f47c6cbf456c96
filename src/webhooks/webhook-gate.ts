import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { clientAddress, TrustFn, trustFunction } from '../config/trust-proxy';
import { Metrics } from '../metrics/metrics';
import { IpAllowlist, parseClientAddress } from '../config/ip-allowlist';
import { RefusalThrottle } from './refusal-throttle';

const WINDOW_MS = 60_000;
/** A throttled sender may have one delivery a second verified, so its genuine deliveries can lift the throttle. */
const PROBE_INTERVAL_MS = 1_000;
/** Senders remembered at once, by the throttle and by the once-a-minute log of refused addresses. */
const MAX_SENDERS = 10_000;
/** A refused request's body is left unread; below this size the connection is kept and the body skipped, above it closed. */
const KEEP_ALIVE_BODY_BYTES = 64 * 1024;
/**
 * A throttled sender's 429 is held back this long, so a flood that waits for
 * each answer (as HTTP/1.1 clients do per connection) slows itself to one
 * request a second per connection. At most MAX_HELD are held at once (a held
 * request costs about what an idle keep-alive connection does); past that the
 * 429 goes at once. Closing the connection instead was measured dearer for
 * Settle than answering on it (the reconnect costs the server more than the request).
 */
const TARPIT_MS = 1_000;
const MAX_HELD = 1_024;
const TIMESTAMP = /(?:^|,)\s*t=(\d+)\s*(?:,|$)/;
const V1 = /(?:^|,)\s*v1=[0-9a-fA-F]{64}\s*(?:,|$)/;

/**
 * The webhook route's outer gate, run before a delivery's body is read:
 * WEBHOOK_ALLOWED_IPS (403 for other addresses) and the throttle of senders
 * whose deliveries keep failing verification (429 without an HMAC; see
 * RefusalThrottle for the rule). The client address is the one Express's
 * req.ip gives for the same TRUST_PROXY.
 */
@Injectable()
export class WebhookGate {
  private readonly logger = new Logger(WebhookGate.name);
  private readonly trust: TrustFn;
  private readonly allowlist?: IpAllowlist;
  private readonly throttle: RefusalThrottle;
  private readonly toleranceS: number;
  /** Address -> when its next refusal may be logged. Insertion order is log order, so the front is the oldest. */
  private readonly refusalLoggedUntil = new Map<string, number>();
  /** 429s being held back now (TARPIT_MS). */
  private held = 0;

  constructor(@Inject(APP_CONFIG) config: AppConfig, private readonly metrics: Metrics) {
    this.trust = trustFunction(config);
    this.allowlist = config.webhookAllowedIps ? new IpAllowlist(config.webhookAllowedIps) : undefined;
    this.throttle = new RefusalThrottle(config.webhookRefusedPerMinute, WINDOW_MS, PROBE_INTERVAL_MS, MAX_SENDERS);
    this.toleranceS = config.webhookToleranceSeconds;
  }

  /**
   * Answers 403 or 429 itself and returns undefined, or returns the sender's
   * key, to report the delivery's verification with (failed / verified).
   */
  admit(req: IncomingMessage, res: ServerResponse): string | undefined {
    const address = clientAddress(req, this.trust);
    if (this.allowlist && !this.allowlist.allows(address)) {
      this.metrics.webhooksRejected.inc({ reason: 'not_allowed' });
      this.logRefusal(address);
      this.answer(req, res, 403, `Webhook deliveries are not accepted from ${address} (WEBHOOK_ALLOWED_IPS)`);
      return undefined;
    }
    const sender = senderKey(address);
    const waitMs = this.throttle.check(sender, Date.now(), () => this.plausiblySigned(req.headers['stripe-signature']));
    if (waitMs === undefined) return sender;
    this.metrics.webhooksRejected.inc({ reason: 'throttled' });
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    const answer = () =>
      this.answer(req, res, 429, `Too many deliveries from this address failed verification; retry after ${seconds} s (verified deliveries are not limited)`, {
        'Retry-After': String(seconds),
      });
    if (this.held >= MAX_HELD) answer();
    else this.holdBack(req, res, answer);
    return undefined;
  }

  /** The delivery from `sender` failed verification (answered 400). */
  failed(sender: string): void {
    if (!this.throttle.failed(sender, Date.now())) return;
    this.metrics.webhookSendersThrottled.inc();
    this.logger.warn({
      msg: 'webhook sender throttled',
      sender,
      limit: this.throttle.limit,
      detail: `${this.throttle.limit} deliveries failed verification within a minute; further ones get 429 unverified until the minute ends`,
    });
  }

  /** The delivery from `sender` verified: it never counts, and lifts a throttle. */
  verified(sender: string): void {
    if (this.throttle.verified(sender, Date.now())) this.logger.log({ msg: 'webhook sender unthrottled: a delivery verified', sender });
  }

  /** Cheap test a throttled sender's request must pass to be verified: t= within the tolerance either way, and a v1= of the right length. */
  private plausiblySigned(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string' || !V1.test(header)) return false;
    const t = TIMESTAMP.exec(header);
    return t !== null && Math.abs(Number(t[1]) - Date.now() / 1000) <= this.toleranceS;
  }

  /** At most one line per address a minute, however many it sends. */
  private logRefusal(address: string): void {
    const now = Date.now();
    const until = this.refusalLoggedUntil.get(address);
    if (until !== undefined && now < until) return;
    this.refusalLoggedUntil.delete(address);
    if (this.refusalLoggedUntil.size >= MAX_SENDERS) this.refusalLoggedUntil.delete(this.refusalLoggedUntil.keys().next().value as string);
    this.refusalLoggedUntil.set(address, now + WINDOW_MS);
    this.logger.warn({ msg: 'webhook refused: address not in WEBHOOK_ALLOWED_IPS (logged once a minute per address)', address });
  }

  /** Answers after TARPIT_MS, unless the client goes away first; the body is skipped meanwhile. */
  private holdBack(req: IncomingMessage, res: ServerResponse, answer: () => void): void {
    this.held++;
    req.resume();
    let released = false;
    const release = () => {
      if (released) return false;
      released = true;
      this.held--;
      return true;
    };
    const timer = setTimeout(() => {
      if (release()) answer();
    }, TARPIT_MS);
    res.once('close', () => {
      if (release()) clearTimeout(timer);
    });
  }

  /** The API's error shape, without reading the body. */
  private answer(req: IncomingMessage, res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
    if (res.destroyed) return;
    const body = JSON.stringify({ statusCode: status, error: STATUS_CODES[status], message });
    const declared = Number(req.headers['content-length']);
    const keepAlive = Number.isFinite(declared) && declared <= KEEP_ALIVE_BODY_BYTES;
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      ...headers,
      ...(keepAlive ? {} : { Connection: 'close' }),
    });
    res.end(body);
    req.resume();
  }
}

/**
 * Who the throttle counts as one sender: an IPv4 address, or an IPv6 /64
 * (one host usually holds a whole /64, so single IPv6 addresses would let it
 * dodge the limit).
 */
export function senderKey(address: string | undefined): string {
  const parsed = parseClientAddress(address);
  // Only a header from a proxy trusted for anything (TRUST_PROXY=true) can carry a non-address; one key for them all.
  if (!parsed) return 'unknown';
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const parts = (parsed as import('ipaddr.js').IPv6).parts.slice(0, 4);
  return `${parts.map((p) => p.toString(16)).join(':')}::/64`;
}
