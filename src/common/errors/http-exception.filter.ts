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
      message = exception.type === 'entity.too.large' ? 'Request body is too large' : `Request body is not valid JSON: ${exception.message}`;
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
