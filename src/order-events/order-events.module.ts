import { DynamicModule, Inject, Module, OnModuleInit } from '@nestjs/common';
import { AppRole } from '../config/app-config';
import { Metrics } from '../metrics/metrics';
import { OrdersModule } from '../orders/orders.module';
import { OrderEventSender } from './order-event.sender';
import { OrderEventsAdminController } from './order-events-admin.controller';
import { OrderEventsOutboxModule } from './order-events-outbox.module';
import { OrderEventsListener } from './order-events.listener';
import { OrderEventsRepository } from './order-events.repository';
import { OrderEventsStreamController } from './order-events-stream.controller';

/** Order events out: the sender for the worker role, the live stream and operators' routes for the api role; both for `all`. */
@Module({})
export class OrderEventsModule implements OnModuleInit {
  constructor(@Inject(OrderEventsRepository) private readonly events: OrderEventsRepository, private readonly metrics: Metrics) {}

  static forRole(role: AppRole): DynamicModule {
    const serves = role !== 'worker';
    const works = role !== 'api';
    return {
      module: OrderEventsModule,
      imports: [OrderEventsOutboxModule, OrdersModule],
      controllers: serves ? [OrderEventsAdminController, OrderEventsStreamController] : [],
      providers: [OrderEventsListener, ...(works ? [OrderEventSender] : [])],
    };
  }

  /** The pending and failed gauges are counted when /metrics is scraped, so they cost nothing in between. */
  onModuleInit(): void {
    // A failing collector keeps the last values (Metrics.scrape); /health reports a database outage.
    this.metrics.onScrape(async () => {
      const open = await this.events.countOpen();
      this.metrics.orderEventDeliveries.set({ state: 'pending' }, open.pending);
      this.metrics.orderEventDeliveries.set({ state: 'failed' }, open.failed);
    });
  }
}
