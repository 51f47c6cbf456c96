/** What went wrong, in terms of the domain; the filter maps each code to one HTTP status. */
export enum ErrorCode {
  Validation = 'validation',
  NotFound = 'not_found',
  Conflict = 'conflict',
  IdempotencyMismatch = 'idempotency_mismatch',
  Unauthorized = 'unauthorized',
  PspUnavailable = 'psp_unavailable',
  PspRejected = 'psp_rejected',
  CardDeclined = 'card_declined',
  ServiceUnavailable = 'service_unavailable',
}

export class DomainError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}
