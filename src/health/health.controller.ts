import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { Response } from 'express';
import { WebhookQueueStats } from '../webhooks/webhook-queue-stats';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { ShutdownState } from './shutdown-state';

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
    private readonly shutdown: ShutdownState,
  ) {}

  @Get()
  @ApiOperation({ summary: 'PostgreSQL and Redis state: 200 when both answer, 503 when either is down' })
  @ApiResponse({ status: 200, schema: { example: { status: 'ok', info: { postgres: { status: 'up' }, redis: { status: 'up' } }, error: {}, details: {} } } })
  @ApiResponse({ status: 503, schema: { example: { status: 'error', error: { redis: { status: 'down' } } } } })
  live(@Res({ passthrough: true }) res: Response) {
    return this.run(res, [() => this.postgres(), () => this.redis()]);
  }

  @Get('ready')
  @ApiOperation({ summary: 'Ready for traffic: dependencies up and the webhook queue backlog below READY_MAX_BACKLOG' })
  ready(@Res({ passthrough: true }) res: Response) {
    return this.run(res, [() => this.notDraining(), () => this.postgres(), () => this.redis(), () => this.backlog()]);
  }

  private async run(res: Response, checks: Parameters<HealthCheckService['check']>[0]) {
    try {
      return statesOnly(await this.health.check(checks));
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      res.status(503);
      return statesOnly(err.getResponse());
    }
  }

  private postgres() {
    return this.typeorm.pingCheck('postgres', { timeout: PROBE_TIMEOUT_MS });
  }

  private redis() {
    return this.indicators.check('redis').attempt(async () => ({ reply: await this.queue.ping() })).withTimeout(PROBE_TIMEOUT_MS);
  }

  /** Fails from SIGTERM on (see ShutdownState), so traffic moves elsewhere before the listener closes. */
  private notDraining() {
    return this.indicators.check('shutdown').attempt(async () => {
      if (this.shutdown.draining) throw new Error('shutting down: not taking new traffic');
      return {};
    });
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

/**
 * The answer is public: each check keeps its state (and the queue its
 * numbers), never a driver's error text, which names internal addresses
 * (`connect ECONNREFUSED 10.0.0.5:5432`). The logs keep the detail.
 */
function statesOnly(result: unknown): unknown {
  if (typeof result !== 'object' || result === null) return result;
  const out: Record<string, unknown> = { ...(result as Record<string, unknown>) };
  for (const section of ['info', 'error', 'details']) {
    const checks = out[section];
    if (typeof checks !== 'object' || checks === null) continue;
    out[section] = Object.fromEntries(
      Object.entries(checks as Record<string, Record<string, unknown>>).map(([name, check]) => [
        name,
        Object.fromEntries(Object.entries(check ?? {}).filter(([key, value]) => key === 'status' || typeof value === 'number')),
      ]),
    );
  }
  return out;
}
