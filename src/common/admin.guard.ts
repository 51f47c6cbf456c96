import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import { digest } from './admin-auth.middleware';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { DomainError, ErrorCode } from './errors/domain-error';

/** Admin routes need `Authorization: Bearer $ADMIN_API_KEY`. */
@Injectable()
export class AdminGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.expected = digest(config.adminApiKey);
  }

  canActivate(context: ExecutionContext): boolean {
    const header: unknown = context.switchToHttp().getRequest().headers?.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    // Compare digests so the comparison takes the same time whatever the length of the guess.
    if (!match || !timingSafeEqual(digest(match[1] as string), this.expected)) {
      throw new DomainError(ErrorCode.Unauthorized, 'This route needs Authorization: Bearer <ADMIN_API_KEY>');
    }
    return true;
  }
}
