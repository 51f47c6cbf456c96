import { DynamicModule, Module, Provider, Type } from '@nestjs/common';
import { AppRole } from '../config/app-config';
import { PaymentsModule } from '../payments/payments.module';
import { WebhookAdminController } from './webhook-admin.controller';
import { WebhookController } from './webhook.controller';
import { WebhookGate } from './webhook-gate';
import { WebhookInboxModule } from './webhook-inbox.module';
import { WebhookProcessor } from './webhook.processor';
import { WebhookRelay } from './webhook-relay';

/** Ingestion (controller) for the api role, processing for the worker role; both for `all`. */
@Module({})
export class WebhooksModule {
  static forRole(role: AppRole): DynamicModule {
    const serves = role !== 'worker';
    const works = role !== 'api';
    const controllers: Type[] = serves ? [WebhookAdminController] : [];
    // WebhookController answers at the HTTP server's front door (mountWebhookRoute), so it is a provider.
    const providers: Provider[] = [...(serves ? [WebhookController, WebhookGate] : []), ...(works ? [WebhookProcessor, WebhookRelay] : [])];
    return {
      module: WebhooksModule,
      imports: [WebhookInboxModule, ...(works ? [PaymentsModule] : [])],
      controllers,
      providers,
      exports: serves ? [WebhookController] : [],
    };
  }
}
