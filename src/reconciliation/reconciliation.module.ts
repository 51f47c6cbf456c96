import { Module } from '@nestjs/common';

/** The scheduled reconciler; loaded only for the worker and all roles. */
@Module({})
export class ReconciliationModule {}
