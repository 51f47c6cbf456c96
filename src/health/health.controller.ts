import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { Response } from 'express';
import { WebhookQueueStats } from '../webhooks/webhook-queue-stats';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';

const PROBE_TIMEOUT_MS = 2000;

/**
 * Liveness of the dependencies (/health, per the contract) and readiness to
 * take traffic (/health/ready: also fails while the queue backlog is too deep).
 * Terminus answers 503 by throwing; we return its body as is so the operator sees which check failed.
 */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly typeorm: TypeOrmHealthIndicator,
    private readonly queue: WebhookQueueStats,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  @ApiOperation({ summary: 'PostgreSQL and Redis state: 200 when both answer, 503 when either is down' })
  @ApiResponse({ status: 200, schema: { example: { status: 'ok', info: { postgres: { status: 'up' }, redis: { status: 'up' } }, error: {}, details: {} } } })
  @ApiResponse({ status: 503, schema: { example: { status: 'error', error: { redis: { status: 'down', message: 'Connection is closed.' } } } } })
  live(@Res({ passthrough: true }) res: Response) {
    return this.run(res, [() => this.postgres(), () => this.redis()]);
  }

  @Get('ready')
  @ApiOperation({ summary: 'Ready for traffic: dependencies up and the webhook queue backlog below READY_MAX_BACKLOG' })
  ready(@Res({ passthrough: true }) res: Response) {
    return this.run(res, [() => this.postgres(), () => this.redis(), () => this.backlog()]);
  }

  private async run(res: Response, checks: Parameters<HealthCheckService['check']>[0]) {
    try {
      return await this.health.check(checks);
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      res.status(503);
      return err.getResponse();
    }
  }

  private postgres() {
    return this.typeorm.pingCheck('postgres', { timeout: PROBE_TIMEOUT_MS });
  }

  private redis() {
    return this.indicators.check('redis').attempt(async () => ({ reply: await this.queue.ping() })).withTimeout(PROBE_TIMEOUT_MS);
  }

  private backlog() {
    const max = this.config.readyMaxBacklog;
    return this.indicators
      .check('queue')
      .attempt(async () => {
        const backlog = await this.queue.backlog();
        if (backlog > max) throw new Error(`backlog ${backlog} is over READY_MAX_BACKLOG ${max}`);
        return { backlog, max };
      })
      .withTimeout(PROBE_TIMEOUT_MS);
  }
}
