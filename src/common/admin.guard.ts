import { CanActivate, ExecutionContext, HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { digest, matchesAny } from './admin-auth.middleware';
import { AuthFailureThrottle, TOO_MANY_FAILURES_MESSAGE } from './auth-failure-throttle';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { DomainError, ErrorCode } from './errors/domain-error';

/** Admin routes need `Authorization: Bearer $ADMIN_API_KEY`; a client sending wrong keys is slowed down (429). */
@Injectable()
export class AdminGuard implements CanActivate {
  private readonly expected: Buffer[];

  constructor(@Inject(APP_CONFIG) config: AppConfig, private readonly throttle: AuthFailureThrottle) {
    this.expected = [digest(config.adminApiKey)];
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    const client = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const wait = this.throttle.retryAfterSeconds(client);
    if (wait > 0) {
      context.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(wait));
      throw new HttpException(TOO_MANY_FAILURES_MESSAGE, HttpStatus.TOO_MANY_REQUESTS);
    }
    const header: unknown = req.headers?.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match || !matchesAny(match[1] as string, this.expected)) {
      if (header !== undefined) this.throttle.recordFailure(client);
      throw new DomainError(ErrorCode.Unauthorized, 'This route needs Authorization: Bearer <ADMIN_API_KEY>');
    }
    return true;
  }
}
