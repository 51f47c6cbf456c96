import { Module } from '@nestjs/common';
import { PaymentApplier } from './payment-applier';

/** Applying PSP facts to orders; used by the webhook processor and the reconciler. */
@Module({ providers: [PaymentApplier], exports: [PaymentApplier] })
export class PaymentsModule {}
