import { Controller, Get, HttpCode, Inject, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '../common/admin.guard';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { DELIVERY_STATUSES, DeliveryStatus } from './order-event.types';
import { OrderEventRecord, OrderEventsRepository } from './order-events.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Outgoing order events for operators: what was sent where, how often, the last answer, the next try; and redelivery. */
@ApiTags('order-events')
@ApiBearerAuth('admin')
@UseGuards(AdminGuard)
@Controller('admin/order-events')
export class OrderEventsAdminController {
  constructor(private readonly events: OrderEventsRepository, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  @Get()
  @ApiOperation({ summary: 'Order events, newest first, each with its deliveries; ?status=failed lists those that gave up' })
  @ApiQuery({ name: 'status', required: false, enum: DELIVERY_STATUSES })
  @ApiQuery({ name: 'orderId', required: false })
  @ApiQuery({ name: 'limit', required: false, type: Number })
  async list(@Query('status') status?: string, @Query('orderId') orderId?: string, @Query('limit') limitRaw?: string): Promise<{ data: OrderEventRecord[] }> {
    if (status !== undefined && !DELIVERY_STATUSES.includes(status as DeliveryStatus)) {
      throw new DomainError(ErrorCode.Validation, `status must be one of ${DELIVERY_STATUSES.join(', ')}`);
    }
    if (orderId !== undefined && !UUID.test(orderId)) throw new DomainError(ErrorCode.Validation, 'orderId must be an order id (a UUID)');
    const limit = limitRaw === undefined ? 50 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new DomainError(ErrorCode.Validation, 'limit must be a whole number from 1 to 500');
    return { data: await this.events.list({ status: status as DeliveryStatus | undefined, orderId, limit }) };
  }

  @Post(':id/redeliver')
  @HttpCode(202)
  @ApiOperation({ summary: 'Send an order event again to every endpoint, with a fresh 72-hour retry window' })
  async redeliver(@Param('id') id: string): Promise<{ id: string; endpoints: string[] }> {
    const endpoints = this.config.orderEvents.endpoints;
    if (endpoints.length === 0) throw new DomainError(ErrorCode.Conflict, 'ORDER_EVENTS_URL is not set: there is nowhere to deliver order events');
    if (!(await this.events.redeliver(id, endpoints))) throw new DomainError(ErrorCode.NotFound, `Order event ${id} not found`);
    return { id, endpoints };
  }
}
