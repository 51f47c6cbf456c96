/**
 * Checks on a webhook request that the SDK's verification does not make,
 * each answered 400 before anything is stored. Pure functions.
 */

const UTF8_BOM = [0xef, 0xbb, 0xbf];
/** 9999-12-31T23:59:59Z: a `created` past it is no real event, and would overflow what the inbox stores. */
const LATEST_CREATED = 253_402_300_799;

/** Why the request must be refused before verifying it, with the reason label counted in metrics, or null. */
export function precheckSignedRequest(raw: Buffer, signature: string): { reason: string; message: string } | null {
  // The SDK would verify these bytes, BOM included, while JSON.parse later fails on them: the stored
  // event would go dead and its genuine redelivery count as a duplicate. Refused, so the PSP's retry is what gets stored.
  if (raw.length >= 3 && UTF8_BOM.every((byte, i) => raw[i] === byte)) {
    return { reason: 'malformed', message: 'The body starts with a UTF-8 byte order mark; send the event exactly as the PSP signed it, without one' };
  }
  // The route checks the first t= against the future-timestamp rule, the SDK verifies with the last one.
  const timestamps = signature.split(',').filter((part) => part.trim().startsWith('t=')).length;
  if (timestamps > 1) return { reason: 'signature', message: 'Stripe-Signature carries more than one t= timestamp' };
  return null;
}

/** `created` of a verified event: whole seconds between 1970 and 9999. */
export function createdInRange(created: unknown): boolean {
  return typeof created === 'number' && Number.isSafeInteger(created) && created >= 0 && created <= LATEST_CREATED;
}
