import { Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AdminGuard } from '../common/admin.guard';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { InboxStatus, WebhookInboxEvent } from './webhook-inbox.entity';
import { WebhookInbox } from './webhook-inbox.service';

const STATUSES: InboxStatus[] = ['received', 'queued', 'processed', 'ignored', 'dead'];

type InboxView = Omit<WebhookInboxEvent, 'payload'>;

/** The inbox for operators: what came in, what failed (dead) and why, and a way to run it again. */
@ApiTags('webhooks')
@ApiBearerAuth('admin')
@UseGuards(AdminGuard)
@Controller('admin/webhook-events')
export class WebhookAdminController {
  constructor(@InjectDataSource() private readonly db: DataSource, private readonly inbox: WebhookInbox) {}

  @Get()
  @ApiOperation({ summary: 'Stored PSP events, newest first; ?status=dead lists those that failed every attempt' })
  @ApiQuery({ name: 'status', required: false, enum: STATUSES })
  @ApiQuery({ name: 'limit', required: false, type: Number })
  async list(@Query('status') status?: string, @Query('limit') limitRaw?: string): Promise<{ data: InboxView[] }> {
    if (status !== undefined && !STATUSES.includes(status as InboxStatus)) {
      throw new DomainError(ErrorCode.Validation, `status must be one of ${STATUSES.join(', ')}`);
    }
    const limit = limitRaw === undefined ? 50 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new DomainError(ErrorCode.Validation, 'limit must be a whole number from 1 to 500');
    const rows = await this.db.getRepository(WebhookInboxEvent).find({
      select: { id: true, type: true, eventCreated: true, source: true, status: true, attempts: true, lastError: true, outcome: true, receivedAt: true, processedAt: true },
      where: status ? { status: status as InboxStatus } : {},
      order: { receivedAt: 'DESC' },
      take: limit,
    });
    return { data: rows };
  }

  @Post(':id/replay')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run a stored event through the processor again (applying it twice changes nothing)' })
  async replay(@Param('id') id: string): Promise<{ id: string; status: InboxStatus; queued: boolean }> {
    const result = await this.db.query(`UPDATE webhook_events SET status = 'received', processed_at = NULL WHERE id = $1 RETURNING id`, [id]);
    const rows = Array.isArray(result[0]) ? result[0] : result;
    if (rows.length === 0) throw new DomainError(ErrorCode.NotFound, `Webhook event ${id} not found`);
    const queued = await this.inbox.requeue(id);
    return { id, status: queued ? 'queued' : 'received', queued };
  }
}
