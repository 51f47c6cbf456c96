import { Module } from '@nestjs/common';
import { PspModule } from '../psp/psp.module';
import { OrderRepository } from './order.repository';
import { OrderTransitions } from './order-transitions';
import { OrdersController } from './orders.controller';
import { OrdersService } from './orders.service';

/**
 * The order aggregate: an order, its payment, refunds, history and
 * idempotency keys (one lock, one transaction, one repository), and the one
 * writer of status changes that webhooks and the reconciler call.
 */
@Module({
  imports: [PspModule],
  providers: [OrderRepository, OrderTransitions, OrdersService],
  exports: [OrderRepository, OrderTransitions, OrdersService],
})
export class OrdersModule {}

/** The orders HTTP API (roles api and all). */
@Module({ imports: [OrdersModule], controllers: [OrdersController] })
export class OrdersHttpModule {}
