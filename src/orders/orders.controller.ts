import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { Response } from 'express';
import { AdminGuard } from '../common/admin.guard';
import { DomainError, ErrorCode } from '../common/errors/domain-error';
import { CreateOrderDto } from './dto/create-order.dto';
import { CreateRefundDto } from './dto/create-refund.dto';
import { CaptureOrderDto } from './dto/capture-order.dto';
import { DisputeEvidenceDto } from './dto/dispute-evidence.dto';
import { ListOrdersQuery } from './dto/list-orders.query';
import { OrderPage, OrderView, RefundResult } from './dto/order.view';
import { OrdersService } from './orders.service';
import { OrderBodyGuard } from './order-body.guard';

const ERROR_EXAMPLE = (statusCode: number, error: string, message: string) => ({ schema: { example: { statusCode, error, message } } });

@ApiTags('orders')
@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  /** 201 when created, 200 when an Idempotency-Key replays an earlier order. */
  @Post()
  @UseGuards(ThrottlerGuard, OrderBodyGuard)
  @ApiOperation({ summary: 'Create an order and its PaymentIntent; the server computes the amount' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Same key + same body returns the same order; a different body answers 422' })
  @ApiResponse({ status: 201, type: OrderView, description: 'Created' })
  @ApiResponse({ status: 200, type: OrderView, description: 'Replayed for the same Idempotency-Key' })
  @ApiResponse({ status: 400, ...ERROR_EXAMPLE(400, 'Bad Request', 'items.0.quantity must not be less than 1') })
  @ApiResponse({ status: 422, ...ERROR_EXAMPLE(422, 'Unprocessable Entity', 'This Idempotency-Key was already used with a different request body') })
  @ApiResponse({ status: 429, ...ERROR_EXAMPLE(429, 'Too Many Requests', 'ThrottlerException: Too Many Requests') })
  @ApiResponse({ status: 503, ...ERROR_EXAMPLE(503, 'Service Unavailable', 'The payment provider is unavailable while creating the PaymentIntent; retry later') })
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
  @ApiBearerAuth('admin')
  @ApiOperation({ summary: 'List orders, newest first (status=authorized: soonest capture deadline first), with cursor pagination' })
  @ApiResponse({ status: 200, type: OrderPage })
  @ApiResponse({ status: 401, ...ERROR_EXAMPLE(401, 'Unauthorized', 'This route needs Authorization: Bearer <ADMIN_API_KEY>') })
  list(@Query() query: ListOrdersQuery): Promise<OrderPage> {
    return this.orders.list(query);
  }

  @Get(':id')
  @UseGuards(ThrottlerGuard)
  @ApiOperation({ summary: 'One order with its payment, refunds total and status history' })
  @ApiResponse({ status: 200, type: OrderView })
  @ApiResponse({ status: 404, ...ERROR_EXAMPLE(404, 'Not Found', 'Order 0b7c2a9e-5f1d-4c8e-9a7b-3d2e1f0a9b8c not found') })
  get(@Param('id') id: string): Promise<OrderView> {
    return this.orders.get(id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  @ApiBearerAuth('admin')
  @ApiOperation({ summary: 'Cancel an unpaid order and its PaymentIntent; an authorized order is voided (its hold released)' })
  @ApiResponse({ status: 200, type: OrderView })
  @ApiResponse({ status: 409, ...ERROR_EXAMPLE(409, 'Conflict', 'Order … is paid; only unpaid or authorized orders can be canceled') })
  cancel(@Param('id') id: string): Promise<OrderView> {
    return this.orders.cancel(id);
  }

  @Post(':id/capture')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  @ApiBearerAuth('admin')
  @ApiOperation({ summary: 'Capture an authorized order, all or part (the rest is released); paid once the PSP confirms, which its answer does' })
  @ApiResponse({ status: 200, type: OrderView, description: 'Captured: the order is paid, with amountCaptured' })
  @ApiResponse({ status: 400, ...ERROR_EXAMPLE(400, 'Bad Request', 'amount 5000 is more than the 3448 that is capturable') })
  @ApiResponse({ status: 409, ...ERROR_EXAMPLE(409, 'Conflict', 'Order … is pending_payment; only authorized orders can be captured') })
  capture(@Param('id') id: string, @Body() dto: CaptureOrderDto): Promise<OrderView> {
    return this.orders.capture(id, dto.amount);
  }

  @Post(':id/dispute/evidence')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  @ApiBearerAuth('admin')
  @ApiOperation({ summary: "Submit evidence for the order's open dispute; the outcome (won or lost) follows by webhook" })
  @ApiResponse({ status: 200, type: OrderView })
  @ApiResponse({ status: 409, ...ERROR_EXAMPLE(409, 'Conflict', 'Order … has no open dispute') })
  disputeEvidence(@Param('id') id: string, @Body() dto: DisputeEvidenceDto): Promise<OrderView> {
    return this.orders.submitDisputeEvidence(id, dto.text);
  }

  @Post(':id/dispute/accept')
  @HttpCode(200)
  @UseGuards(AdminGuard)
  @ApiBearerAuth('admin')
  @ApiOperation({ summary: "Accept the order's open dispute: it closes as lost and the order becomes dispute_lost" })
  @ApiResponse({ status: 200, type: OrderView })
  @ApiResponse({ status: 409, ...ERROR_EXAMPLE(409, 'Conflict', 'Order … has no open dispute') })
  acceptDispute(@Param('id') id: string): Promise<OrderView> {
    return this.orders.acceptDispute(id);
  }

  @Post(':id/refunds')
  @HttpCode(201)
  @UseGuards(AdminGuard)
  @ApiBearerAuth('admin')
  @ApiOperation({ summary: 'Refund part or all of a paid order; the status follows when the PSP confirms' })
  @ApiResponse({ status: 201, type: RefundResult })
  @ApiResponse({ status: 409, ...ERROR_EXAMPLE(409, 'Conflict', 'Order … has only 2448 left to refund, 5000 was asked') })
  refund(@Param('id') id: string, @Body() dto: CreateRefundDto): Promise<RefundResult> {
    return this.orders.refund(id, dto.amount);
  }
}
