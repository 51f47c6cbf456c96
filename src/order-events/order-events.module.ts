import { DynamicModule, Inject, Module, OnModuleInit } from '@nestjs/common';
import { AppRole } from '../config/app-config';
import { orderEventDeliveries } from '../metrics/metrics';
import { OrderEventSender } from './order-event.sender';
import { OrderEventsAdminController } from './order-events-admin.controller';
import { OrderEventsOutboxModule } from './order-events-outbox.module';
import { OrderEventsListener } from './order-events.listener';
import { OrderEventsRepository } from './order-events.repository';
import { OrderEventsStreamController } from './order-events-stream.controller';

/** Order events out: the sender for the worker role, the live stream and operators' routes for the api role; both for `all`. */
@Module({})
export class OrderEventsModule implements OnModuleInit {
  constructor(@Inject(OrderEventsRepository) private readonly events: OrderEventsRepository) {}

  static forRole(role: AppRole): DynamicModule {
    const serves = role !== 'worker';
    const works = role !== 'api';
    return {
      module: OrderEventsModule,
      imports: [OrderEventsOutboxModule],
      controllers: serves ? [OrderEventsAdminController, OrderEventsStreamController] : [],
      providers: [OrderEventsListener, ...(works ? [OrderEventSender] : [])],
    };
  }

  /** The pending and failed gauges are counted when /metrics is scraped, so they cost nothing in between. */
  onModuleInit(): void {
    // prom-client calls a metric's `collect` on every scrape; its types leave it out once constructed.
    (orderEventDeliveries as unknown as { collect: () => Promise<void> }).collect = async () => {
      try {
        const open = await this.events.countOpen();
        orderEventDeliveries.set({ state: 'pending' }, open.pending);
        orderEventDeliveries.set({ state: 'failed' }, open.failed);
      } catch {
        // Database down: keep the last values; /health reports the outage.
      }
    };
  }
}
