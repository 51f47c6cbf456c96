import { Module } from '@nestjs/common';
import { OrdersModule } from '../orders/orders.module';
import { StorefrontController } from './storefront.controller';
import { StorefrontPsp } from './storefront-psp';

/** The demo shop (DEMO_STOREFRONT=true, HTTP roles): pages only; it uses the orders module and the PSP, and nothing uses it. */
@Module({ imports: [OrdersModule], controllers: [StorefrontController], providers: [StorefrontPsp] })
export class StorefrontModule {}
