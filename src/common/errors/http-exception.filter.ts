import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import { DomainError, ErrorCode } from './domain-error';

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  [ErrorCode.Validation]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.IdempotencyMismatch]: 422,
  [ErrorCode.Unauthorized]: 401,
  [ErrorCode.CardDeclined]: 402,
  [ErrorCode.PspRejected]: 502,
  [ErrorCode.PspUnavailable]: 503,
  [ErrorCode.ServiceUnavailable]: 503,
};

/** The one error shape of every answer, Nest's routes and the webhook handler alike. */
export function errorBody(status: number, message: string): { statusCode: number; error: string; message: string } {
  return { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message };
}

/** Errors leave in one shape, {statusCode, error, message}; unknown errors become a 500 without detail. */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse();
    let status: number;
    let message: string;
    if (exception instanceof DomainError) {
      status = STATUS_BY_CODE[exception.code];
      message = exception.message;
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      const body = exception.getResponse();
      const raw = typeof body === 'string' ? body : (body as { message?: unknown }).message;
      message = Array.isArray(raw) ? raw.join('; ') : String(raw ?? exception.message);
    } else if (isBodyParserError(exception)) {
      // Body parsing fails before any controller: too large or not JSON is the caller's fault.
      status = exception.status;
      message = exception.type === 'entity.too.large' ? 'Request body is too large'
        // Our own checks on the raw body (json-body.ts) say what is wrong themselves.
        : exception.type === 'entity.verify.failed' ? exception.message
        : `Request body is not valid JSON: ${exception.message}`;
    } else if (isDatabaseUnavailable(exception)) {
      // PostgreSQL is down or restarting: a dependency failure the client may retry, not a bug.
      status = HttpStatus.SERVICE_UNAVAILABLE;
      message = 'The database is unavailable; try again shortly';
      this.logger.warn(`database unavailable: ${(exception as Error).message}`);
    } else {
      status = HttpStatus.INTERNAL_SERVER_ERROR;
      message = 'Internal server error';
      this.logger.error(exception instanceof Error ? exception.stack ?? exception.message : String(exception));
    }
    response.status(status).json(errorBody(status, message));
  }
}

function isBodyParserError(e: unknown): e is { status: number; type: string; message: string } {
  return typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string'
    && typeof (e as { status?: unknown }).status === 'number' && (e as { status: number }).status >= 400
    && (e as { status: number }).status < 500;
}

/** Socket errors of a refused, reset or timed-out connection. */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** pg's own messages when a connection dies or cannot be had in time. */
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is not established/i;

/**
 * True when the error (or what TypeORM wraps: driverError, cause, an
 * AggregateError's parts) says PostgreSQL could not be reached: a socket
 * error, SQLSTATE class 08 (connection exception), or 57P01-57P03 (the server
 * shutting down, crashed or starting).
 */
export function isDatabaseUnavailable(e: unknown, depth = 0): boolean {
  if (typeof e !== 'object' || e === null || depth > 3) return false;
  const err = e as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown; errors?: unknown };
  const code = typeof err.code === 'string' ? err.code : '';
  if (CONNECTION_ERRNOS.has(code) || code.startsWith('08') || ['57P01', '57P02', '57P03'].includes(code)) return true;
  if (typeof err.message === 'string' && CONNECTION_MESSAGES.test(err.message)) return true;
  const inner = [err.driverError, err.cause, ...(Array.isArray(err.errors) ? err.errors : [])];
  return inner.some((i) => isDatabaseUnavailable(i, depth + 1));
}
