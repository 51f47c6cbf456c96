import { Module } from '@nestjs/common';
import { OrderEventsOutbox } from './order-events.outbox';
import { OrderEventsRepository } from './order-events.repository';

/** What the transition writer needs: the outbox and the tables' owner. Imported by orders and payments. */
@Module({ providers: [OrderEventsRepository, OrderEventsOutbox], exports: [OrderEventsRepository, OrderEventsOutbox] })
export class OrderEventsOutboxModule {}
