import { Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '../common/admin.guard';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { INBOX_STATUSES as STATUSES, InboxRepository, InboxStatus, InboxView } from './webhook-inbox.repository';
import { WebhookInbox } from './webhook-inbox.service';

/** The inbox for operators: what came in, what failed (dead) and why, and a way to run it again. */
@ApiTags('webhooks')
@ApiBearerAuth('admin')
@UseGuards(AdminGuard)
@Controller('admin/webhook-events')
export class WebhookAdminController {
  constructor(private readonly rows: InboxRepository, private readonly inbox: WebhookInbox) {}

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
    return { data: await this.rows.list(status as InboxStatus | undefined, limit) };
  }

  @Post(':id/replay')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run a stored event through the processor again (applying it twice changes nothing)' })
  async replay(@Param('id') id: string): Promise<{ id: string; status: InboxStatus; queued: boolean }> {
    if (!(await this.rows.resetForReplay(id))) throw new DomainError(ErrorCode.NotFound, `Webhook event ${id} not found`);
    // Not queued (Redis down): the relay queues it.
    const queued = await this.inbox.requeue(id);
    return { id, status: 'received', queued };
  }
}
