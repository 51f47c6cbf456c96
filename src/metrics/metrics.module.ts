import { DynamicModule, Global, Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller';
import { Metrics } from './metrics';

/** The process's Metrics for every module; the scrape route only where the process serves HTTP. */
@Global()
@Module({})
export class MetricsModule {
  static forRoot(serve: boolean): DynamicModule {
    return { module: MetricsModule, providers: [Metrics], exports: [Metrics], controllers: serve ? [MetricsController] : [] };
  }
}
