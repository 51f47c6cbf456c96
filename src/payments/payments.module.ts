import { Module } from '@nestjs/common';
import { PaymentApplier } from './payment-applier';
import { OrderEventsOutboxModule } from '../order-events/order-events-outbox.module'; // outbox hook

/** Applying PSP facts to orders; used by the webhook processor and the reconciler. */
@Module({ imports: [OrderEventsOutboxModule], providers: [PaymentApplier], exports: [PaymentApplier] }) // outbox hook: imports
export class PaymentsModule {}
