import { Module } from '@nestjs/common';
import { OrdersController } from './orders.controller';
import { OrdersService } from './orders.service';
import { OrderEventsOutboxModule } from '../order-events/order-events-outbox.module'; // outbox hook

@Module({ imports: [OrderEventsOutboxModule], controllers: [OrdersController], providers: [OrdersService], exports: [OrdersService] }) // outbox hook: imports
export class OrdersModule {}
