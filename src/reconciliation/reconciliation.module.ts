import { Module } from '@nestjs/common';
import { PaymentsModule } from '../payments/payments.module';
import { WebhookInboxModule } from '../webhooks/webhook-inbox.module';
import { ReconcilerService } from './reconciler.service';

/** The scheduled reconciler; loaded only for the worker and all roles. */
@Module({ imports: [WebhookInboxModule, PaymentsModule], providers: [ReconcilerService], exports: [ReconcilerService] })
export class ReconciliationModule {}
