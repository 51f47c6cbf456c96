import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { InjectQueue } from '@nestjs/bull';
import type { Queue } from 'bull';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { WEBHOOK_QUEUE } from '../webhooks/webhook-queue';

type Check = { status: 'up' } | { status: 'down'; error: string };

/** 200 when PostgreSQL and Redis both answer, 503 (with which one failed) otherwise. */
@Controller('health')
export class HealthController {
  constructor(@InjectDataSource() private readonly db: DataSource, @InjectQueue(WEBHOOK_QUEUE) private readonly queue: Queue) {}

  @Get()
  async health(@Res({ passthrough: true }) res: Response) {
    const [postgres, redis] = await Promise.all([
      check(() => this.db.query('SELECT 1')),
      check(() => this.queue.client.ping()),
    ]);
    const up = postgres.status === 'up' && redis.status === 'up';
    res.status(up ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return { status: up ? 'ok' : 'error', details: { postgres, redis } };
  }
}

async function check(probe: () => Promise<unknown>, timeoutMs = 2000): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs); }),
    ]);
    return { status: 'up' };
  } catch (err) {
    return { status: 'down', error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
