import { Controller, Headers, HttpCode, Inject, Logger, Post, Req } from '@nestjs/common';
import { ApiExcludeEndpoint } from '@nestjs/swagger';
import type { RawBodyRequest } from '@nestjs/common';
import type { Request } from 'express';
import Stripe from 'stripe';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { webhooksRejected } from '../metrics/metrics';
import { StripeClient } from '../payments/psp/stripe.client';
import { WebhookInbox } from './webhook-inbox.service';

const ACCEPTED = { received: true } as const;
const TIMESTAMP = /(?:^|,)\s*t=(\d+)(?:,|$)/;

/**
 * POST /webhooks/stripe: verify -> inbox -> enqueue -> 2xx. Nothing else
 * happens here (the queue does the work), and it is never throttled: Stripe
 * sends bursts, and refusing them only delays money.
 */
@Controller('webhooks')
export class WebhookController {
  private readonly logger = new Logger(WebhookController.name);
  private readonly webhooks: Stripe['webhooks'];
  private readonly secrets: string[];
  private readonly tolerance: number;

  constructor(@Inject(APP_CONFIG) config: AppConfig, stripe: StripeClient, private readonly inbox: WebhookInbox) {
    this.webhooks = stripe.sdk.webhooks;
    this.secrets = config.stripe.webhookSecrets;
    this.tolerance = config.webhookToleranceSeconds;
  }

  @Post('stripe')
  @HttpCode(200)
  @ApiExcludeEndpoint()
  async receive(@Req() req: RawBodyRequest<Request>, @Headers('stripe-signature') signature: string | undefined): Promise<typeof ACCEPTED> {
    const raw = req.rawBody;
    if (!raw || raw.length === 0) throw reject('malformed', 'The body must be the JSON event exactly as the PSP sent it (Content-Type: application/json)');
    const event = this.verify(raw, signature);
    try {
      await this.inbox.accept({ id: event.id, type: event.type, created: event.created }, raw.toString('utf8'), 'webhook');
    } catch (err) {
      // Not stored: a 5xx makes the PSP retry, so the event cannot be lost.
      webhooksRejected.inc({ reason: 'storage' });
      this.logger.error({ msg: 'could not store webhook event', eventId: event.id, error: (err as Error).message });
      throw new DomainError(ErrorCode.ServiceUnavailable, 'The event could not be stored; retry later');
    }
    return ACCEPTED;
  }

  /** Checks the signature against every configured secret (several while rotating) before reading anything. */
  private verify(raw: Buffer, signature: string | undefined): Stripe.Event {
    if (typeof signature !== 'string' || signature.length === 0) throw reject('signature', 'Missing Stripe-Signature header');
    const timestamp = TIMESTAMP.exec(signature);
    if (!timestamp) throw reject('signature', 'Malformed Stripe-Signature header');
    // The SDK only refuses old timestamps; one far ahead is as suspect (a replay prepared in advance).
    if (Number(timestamp[1]) > Date.now() / 1000 + this.tolerance) throw reject('stale', 'Stripe-Signature timestamp is in the future');
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
        throw reject('malformed', 'The signed body is not valid JSON');
      }
      if (!event || typeof event.id !== 'string' || typeof event.type !== 'string' || !Number.isInteger(event.created)) {
        throw reject('malformed', 'The signed body is not a PSP event (id, type, created)');
      }
      return event;
    }
    throw stale ? reject('stale', 'Stripe-Signature timestamp is older than the tolerance') : reject('signature', 'No valid signature for this body');
  }
}

function reject(reason: string, message: string): DomainError {
  webhooksRejected.inc({ reason });
  return new DomainError(ErrorCode.Validation, message);
}
