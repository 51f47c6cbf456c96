import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { checkCurrency } from './currencies';

/** Most lines one order may have (the DTO says the same; this is checked first, before anything walks them). */
export const MAX_ORDER_LINES = 100;

/** NUL, or a UTF-16 surrogate without its partner: PostgreSQL refuses both in text and jsonb. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Cheap checks on the raw order body, before class-transformer builds an
 * object per line and class-validator reports on each: a body of 30,000 empty
 * lines must cost one comparison, not seconds and megabytes of messages.
 * Returns the first problem, naming its field, or null.
 */
export function precheckOrderBody(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'The body must be a JSON object (an order)';
  const order = body as Record<string, unknown>;
  const items = order.items;
  if (items !== undefined) {
    if (!Array.isArray(items)) return 'items must be an array of order lines';
    if (items.length > MAX_ORDER_LINES) return `items must hold at most ${MAX_ORDER_LINES} lines, got ${items.length}`;
    let total = 0;
    for (let i = 0; i < items.length; i++) {
      const line: unknown = items[i];
      if (typeof line !== 'object' || line === null || Array.isArray(line)) {
        return `items.${i} must be an object with sku, name, unitAmount and quantity`;
      }
      const { unitAmount, quantity } = line as Record<string, unknown>;
      for (const [field, value] of [['unitAmount', unitAmount], ['quantity', quantity]] as const) {
        if (typeof value === 'number' && !Number.isSafeInteger(value)) return `items.${i}.${field} must be a whole number, got ${value}`;
      }
      if (typeof unitAmount === 'number' && typeof quantity === 'number') {
        total += unitAmount * quantity;
        if (!Number.isSafeInteger(total)) return `items add up to more than the largest amount a number can hold exactly`;
      }
    }
  }
  const unstorable = findUnstorableString(order, '');
  if (unstorable !== null) return `${unstorable} must not contain NUL characters or unpaired UTF-16 surrogates`;
  if (typeof order.currency === 'string' && /^[a-z]{3}$/.test(order.currency)) {
    const problem = checkCurrency(order.currency);
    if (problem) return problem.message;
  }
  return null;
}

/** The path (items.0.name) of the first string PostgreSQL could not store, or null. The parser bounds the depth. */
function findUnstorableString(value: unknown, path: string): string | null {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path || 'body' : null;
  if (typeof value !== 'object' || value === null) return null;
  for (const [key, child] of Object.entries(value)) {
    const childPath = path ? `${path}.${key.slice(0, 64)}` : key.slice(0, 64);
    if (UNSTORABLE.test(key)) return `the field name at ${childPath}`;
    const found = findUnstorableString(child, childPath);
    if (found !== null) return found;
  }
  return null;
}

/** Runs precheckOrderBody ahead of the ValidationPipe (guards run before pipes). */
@Injectable()
export class OrderBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const problem = precheckOrderBody(context.switchToHttp().getRequest().body);
    if (problem !== null) throw new DomainError(ErrorCode.Validation, problem);
    return true;
  }
}
