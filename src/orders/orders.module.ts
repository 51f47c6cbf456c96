import { Module, OnModuleInit } from '@nestjs/common';
import { Metrics } from '../metrics/metrics';
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
export class OrdersModule implements OnModuleInit {
  constructor(private readonly metrics: Metrics, private readonly orders: OrderRepository) {}

  /** The expiring-authorizations gauge is counted when /metrics is scraped (an indexed count), so it costs nothing in between. */
  onModuleInit(): void {
    this.metrics.onScrape(async () => {
      this.metrics.authorizationsExpiring.set(await this.orders.countAuthorizationsEndingBefore(new Date(Date.now() + 24 * 3600 * 1000)));
    });
  }
}

/** The orders HTTP API (roles api and all). */
@Module({ imports: [OrdersModule], controllers: [OrdersController] })
export class OrdersHttpModule {}
