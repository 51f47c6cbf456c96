import { DynamicModule, Module, Provider, Type } from '@nestjs/common';
import { AppRole } from '../config/app-config';
import { OrdersModule } from '../orders/orders.module';
import { PspModule } from '../psp/psp.module';
import { PaymentApplier } from './payment-applier';
import { StripeWebhookHandler } from './stripe-webhook.handler';
import { WebhookAdminController } from './webhook-admin.controller';
import { WebhookInboxModule } from './webhook-inbox.module';
import { WebhookProcessor } from './webhook.processor';
import { WebhookRelay } from './webhook-relay';

/** Applying inbox events to orders; used by the processor and the reconciler. */
@Module({ imports: [WebhookInboxModule, OrdersModule, PspModule], providers: [PaymentApplier], exports: [PaymentApplier] })
export class PaymentApplierModule {}

/** Ingestion (handler, admin) for the api role, processing for the worker role; both for `all`. */
@Module({})
export class WebhooksModule {
  static forRole(role: AppRole): DynamicModule {
    const serves = role !== 'worker';
    const works = role !== 'api';
    const controllers: Type[] = serves ? [WebhookAdminController] : [];
    // StripeWebhookHandler answers at the HTTP server's front door (bootstrap mounts it), so it is a provider.
    const providers: Provider[] = [...(serves ? [StripeWebhookHandler] : []), ...(works ? [WebhookProcessor, WebhookRelay] : [])];
    return {
      module: WebhooksModule,
      imports: [WebhookInboxModule, ...(works ? [PaymentApplierModule] : [])],
      controllers,
      providers,
      exports: serves ? [StripeWebhookHandler] : [],
    };
  }
}
