import { Module } from '@nestjs/common';
import { PspClient } from './psp-client';
import { StripeClient } from './stripe.client';

/** The PSP behind its interface; modules that call the PSP import this one. */
@Module({ providers: [{ provide: PspClient, useClass: StripeClient }], exports: [PspClient] })
export class PspModule {}
