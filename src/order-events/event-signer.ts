import { createHmac } from 'node:crypto';

/**
 * Signs an order event per Standard Webhooks: `v1,` and the base64 of
 * HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>"), the key
 * being the base64 after `whsec_`. Not the `standardwebhooks` library's
 * signer: it hashes in JavaScript, about four times the CPU of node:crypto
 * per event, and the sender shares its event loop with the intake. Every test
 * receiver verifies with that library, and event-signer.spec.ts checks the
 * two signatures are the same.
 */
export class EventSigner {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
    if (this.key.length === 0) throw new Error('the signing secret is empty');
  }

  /** The webhook-signature header for this id, time and body. */
  sign(id: string, at: Date, body: string): string {
    const seconds = Math.floor(at.getTime() / 1000);
    return `v1,${createHmac('sha256', this.key).update(`${id}.${seconds}.${body}`).digest('base64')}`;
  }
}
