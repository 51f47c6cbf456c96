import { Module } from '@nestjs/common';
import { OrdersModule } from '../orders/orders.module';
import { PspModule } from '../psp/psp.module';
import { PaymentApplierModule } from '../webhooks/webhooks.module';
import { WebhookInboxModule } from '../webhooks/webhook-inbox.module';
import { ReconcilerStateRepository } from './reconciler-state.repository';
import { ReconcilerService } from './reconciler.service';

/** The scheduled reconciler; loaded only for the worker and all roles. */
@Module({
  imports: [WebhookInboxModule, PaymentApplierModule, OrdersModule, PspModule],
  providers: [ReconcilerStateRepository, ReconcilerService],
  exports: [ReconcilerService],
})
export class ReconciliationModule {}
