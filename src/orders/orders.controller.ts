import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import { AdminGuard } from '../common/admin.guard';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { CreateOrderDto } from './dto/create-order.dto';
import { CreateRefundDto } from './dto/create-refund.dto';
import { ListOrdersQuery } from './dto/list-orders.query';
import { OrderView } from './dto/order.view';
import { OrdersService } from './orders.service';

@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  /** 201 when created, 200 when an Idempotency-Key replays an earlier order. */
  @Post()
  async create(
    @Body() dto: CreateOrderDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<OrderView> {
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
      throw new DomainError(ErrorCode.Validation, 'Idempotency-Key must be 1 to 255 printable ASCII characters');
    }
    const result = await this.orders.create(dto, idempotencyKey);
    res.status(result.created ? 201 : 200);
    return result.order;
  }

  @Get()
  @UseGuards(AdminGuard)
  list(@Query() query: ListOrdersQuery): Promise<{ data: OrderView[]; nextCursor: string | null }> {
    return this.orders.list(query);
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<OrderView> {
    return this.orders.get(id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  cancel(@Param('id') id: string): Promise<OrderView> {
    return this.orders.cancel(id);
  }

  @Post(':id/refunds')
  @HttpCode(201)
  @UseGuards(AdminGuard)
  refund(@Param('id') id: string, @Body() dto: CreateRefundDto) {
    return this.orders.refund(id, dto.amount);
  }
}
