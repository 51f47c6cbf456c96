import { INestApplication, INestApplicationContext, Logger, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger as PinoLogger } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { MigrationExecutor } from 'typeorm/migration/MigrationExecutor';
import { AppModule } from './app.module';
import { AppConfig } from './config/app-config';
import { HttpExceptionFilter } from './common/errors/http-exception.filter';
import { DomainError, ErrorCode } from './common/errors/domain-error';
import { MAX_BODY_BYTES, mountWebhookRoute, StripeWebhookHandler } from './webhooks/stripe-webhook.handler';


/** Builds the HTTP app (roles api and all); not yet listening. */
export async function createHttpApp(config: AppConfig): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    rawBody: true,
    bufferLogs: true,
  });
  app.useLogger(app.get(PinoLogger));
  // The same limit as the webhook route's: larger bodies get 413.
  app.useBodyParser('json', { limit: MAX_BODY_BYTES });
  app.useGlobalFilters(new HttpExceptionFilter());
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) => new DomainError(ErrorCode.Validation, flattenValidation(errors).join('; ')),
    }),
  );
  setupOpenApi(app);
  // The one route outside Nest: the PSP's bursts cost less answered at the server's front door (see the handler).
  mountWebhookRoute(app.getHttpServer(), app.get(StripeWebhookHandler));
  await runMigrations(app);
  return app;
}

/** OpenAPI from the DTOs and controller decorators: the UI at /docs, the document at /docs-json. */
function setupOpenApi(app: NestExpressApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Settle')
      .setDescription('Orders and their payments through a PSP; webhooks verified, stored, queued and applied exactly once.')
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_API_KEY' }, 'admin')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}

/** Builds the worker process (role worker): queue processor and reconciler, no HTTP. */
export async function createWorkerContext(config: AppConfig): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(AppModule.forRoot(config), { bufferLogs: true });
  app.useLogger(app.get(PinoLogger));
  await runMigrations(app);
  return app;
}

/** Starts the process for its role; returns the app and, when it serves HTTP, its URL. */
export async function startApp(config: AppConfig): Promise<{ app: INestApplicationContext; url?: string }> {
  if (config.role === 'worker') {
    const app = await createWorkerContext(config);
    await app.init();
    return { app };
  }
  const app = await createHttpApp(config);
  await app.listen(config.port, '0.0.0.0');
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return { app, url: `http://127.0.0.1:${port}` };
}

/**
 * Graceful stop: first stop taking connections and let in-flight requests
 * finish (Nest would otherwise close the database pool under them), then close
 * the app, which waits for running queue jobs, closes the queues and the pool.
 */
export async function stopApp(app: INestApplicationContext, graceMs = 10000): Promise<void> {
  const server = (app as Partial<INestApplication>).getHttpServer?.() as import('node:http').Server | undefined;
  if (server?.listening) {
    server.emit('stopping'); // long-lived responses (order status streams) end now instead of at the forced close
    const forced = setTimeout(() => server.closeAllConnections(), graceMs);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    clearTimeout(forced);
  }
  await app.close();
}

/** Stops the app once on SIGTERM or SIGINT, then runs `after` (the launcher stops what it embedded) and exits 0. */
export function stopOnSignals(app: INestApplicationContext, after: () => Promise<void> = async () => undefined): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    new Logger('Shutdown').log(`${signal}: finishing in-flight work`);
    stopApp(app)
      .then(after)
      .then(() => process.exit(0))
      .catch((err) => {
        console.error(`Shutdown failed: ${(err as Error).message}`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/**
 * Runs pending migrations before any module starts work. The transaction-scoped
 * advisory lock lets several instances boot at once: one migrates, the others
 * wait and then find nothing pending.
 */
export async function runMigrations(app: INestApplication | INestApplicationContext): Promise<void> {
  const dataSource = app.get(DataSource);
  const runner = dataSource.createQueryRunner();
  try {
    await runner.startTransaction();
    await runner.query('SELECT pg_advisory_xact_lock(7355608)');
    const executor = new MigrationExecutor(dataSource, runner);
    executor.transaction = 'none';
    const done = await executor.executePendingMigrations();
    await runner.commitTransaction();
    if (done.length > 0) new Logger('Migrations').log(`applied ${done.map((m) => m.name).join(', ')}`);
  } catch (err) {
    if (runner.isTransactionActive) await runner.rollbackTransaction();
    throw err;
  } finally {
    await runner.release();
  }
}

interface ValidationFailure {
  property: string;
  constraints?: Record<string, string>;
  children?: ValidationFailure[];
}

/** class-validator nests errors; flatten them into messages that name the full field path (items.0.quantity). */
function flattenValidation(errors: ValidationFailure[], parent = ''): string[] {
  return errors.flatMap((e) => {
    const path = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((m) => (parent ? `${path}: ${m}` : m));
    return [...own, ...flattenValidation(e.children ?? [], path)];
  });
}
