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
import { trustFunction } from './config/trust-proxy';
import helmet from 'helmet';
import { useJsonBodyParsers } from './common/json-body';
import { adminAuthMiddleware } from './common/admin-auth.middleware';
import { AuthFailureThrottle } from './common/auth-failure-throttle';
import { getQueueToken } from '@nestjs/bull';
import type { Job, Queue } from 'bull';
import { APP_CONFIG } from './config/config.module';
import { ShutdownState } from './health/shutdown-state';
import { WEBHOOK_QUEUE, WebhookJob, eventIdsOf } from './webhooks/webhook-queue';


/** Builds the HTTP app (roles api and all); not yet listening. */
export async function createHttpApp(config: AppConfig): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    rawBody: true,
    bufferLogs: true,
  });
  app.useLogger(app.get(PinoLogger));
  // TRUST_PROXY, as one compiled function shared with the webhook route (WebhookGate), so req.ip and its client address agree.
  app.set('trust proxy', trustFunction(config));
  // Security headers, and no X-Powered-By telling an attacker what to aim at.
  app.use(helmet());
  // The same limit as the webhook route's (smaller for /orders): larger bodies get 413.
  useJsonBodyParsers(app, MAX_BODY_BYTES);
  app.useGlobalFilters(new HttpExceptionFilter());
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      stopAtFirstError: true,
      exceptionFactory: (errors) => new DomainError(ErrorCode.Validation, validationMessage(errors)),
    }),
  );
  // The API's map and its counters are for operators: admin key (Basic auth for a browser), or METRICS_TOKEN for a scraper.
  const authThrottle = app.get(AuthFailureThrottle);
  app.use(['/docs', '/docs-json', '/docs-yaml'], adminAuthMiddleware(config.adminApiKey, authThrottle));
  app.use('/metrics', adminAuthMiddleware([config.adminApiKey, ...(config.metricsToken ? [config.metricsToken] : [])], authThrottle));
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
    trackWork(app);
    return { app };
  }
  const app = await createHttpApp(config);
  trackWork(app);
  await app.listen(config.port, config.host);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return { app, url: `http://${shownHost}:${port}` };
}

/** What this process is doing now, so a stop can wait for it and say what a deadline cut off. */
interface Work {
  requests: number;
  /** Job id -> the events it carries. */
  jobs: Map<string, string[]>;
}
const workOf = new WeakMap<INestApplicationContext, Work>();

/** Counts in-flight HTTP requests and the Bull jobs this process runs (the queue's local events). */
function trackWork(app: INestApplicationContext): Work {
  const work: Work = { requests: 0, jobs: new Map() };
  workOf.set(app, work);
  httpServerOf(app)?.on('request', (_req, res: import('node:http').ServerResponse) => {
    work.requests += 1;
    res.once('close', () => (work.requests -= 1));
  });
  const queue = webhookQueueOf(app);
  queue?.on('active', (job: Job<WebhookJob>) => work.jobs.set(String(job.id), eventIdsOf(job.data)));
  queue?.on('completed', (job: Job) => work.jobs.delete(String(job.id)));
  queue?.on('failed', (job: Job) => work.jobs.delete(String(job.id)));
  return work;
}

function httpServerOf(app: INestApplicationContext): import('node:http').Server | undefined {
  return (app as Partial<INestApplication>).getHttpServer?.() as import('node:http').Server | undefined;
}

function webhookQueueOf(app: INestApplicationContext): Queue | undefined {
  try {
    return app.get<Queue>(getQueueToken(WEBHOOK_QUEUE), { strict: false });
  } catch {
    return undefined;
  }
}

/** In-flight work in words, for the line a shutdown deadline prints. */
function describeWork(app: INestApplicationContext): string {
  const work = workOf.get(app);
  if (!work) return 'unknown work';
  // The events the jobs carry: what an operator looks up in the inbox.
  const events = [...work.jobs.values()].flat();
  const eventList = events.length ? ` (${events.slice(0, 5).join(', ')}${events.length > 5 ? ', …' : ''})` : '';
  return `${work.requests} HTTP request(s), ${work.jobs.size} queue job(s)${eventList}`;
}

export interface StopOptions {
  /** How long /health/ready fails before the listener closes (SHUTDOWN_DRAIN_MS). */
  drainMs?: number;
  /** How long in-flight requests get once the listener is closed; then their connections are cut. */
  graceMs?: number;
}

/**
 * Graceful stop, in the order a load balancer needs: /health/ready fails
 * first, then after `drainMs` the listener closes and in-flight requests
 * finish, then the queue takes no new jobs and the running ones finish here
 * (not left to another process's stalled-job recovery), then the app closes
 * its queues and pool. Returns what had to be cut off (empty: nothing).
 */
export async function stopApp(app: INestApplicationContext, options: StopOptions = {}): Promise<string[]> {
  const { drainMs = 0, graceMs = 10000 } = options;
  const cut: string[] = [];
  const shutdown = (() => {
    try {
      return app.get(ShutdownState, { strict: false });
    } catch {
      return undefined;
    }
  })();
  if (shutdown) shutdown.draining = true;
  if (drainMs > 0) await sleep(drainMs);

  const server = httpServerOf(app);
  if (server?.listening) {
    server.emit('stopping'); // long-lived responses (order status streams) end now instead of at the forced close
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections go as soon as their request is answered, not when the client hangs up.
    const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
    const forced = setTimeout(() => {
      const requests = workOf.get(app)?.requests ?? 0;
      if (requests > 0) cut.push(`${requests} HTTP request(s) still running after ${graceMs} ms`);
      server.closeAllConnections();
    }, graceMs);
    await closed;
    clearInterval(idleSweep);
    clearTimeout(forced);
  }
  // Local pause: this process fetches no more jobs and resolves once its running ones are done.
  // (With Redis gone it would wait for Redis; the running jobs then fail and are retried anyway.)
  const queue = webhookQueueOf(app);
  if ((queue?.client as { status?: string } | undefined)?.status === 'ready') await queue?.pause(true);
  await app.close();
  return cut;
}

/**
 * Stops the app once on SIGTERM or SIGINT (SHUTDOWN_DRAIN_MS, then stopApp),
 * then runs `after` (the launcher stops what it embedded) and exits 0. A
 * hard deadline (drain + SHUTDOWN_TIMEOUT_MS) or a second signal ends the
 * process with 1 and one line naming the work that was cut off: stored events
 * are never lost by that (their jobs are retried), requests get no answer.
 */
export function stopOnSignals(app: INestApplicationContext, after: () => Promise<void> = async () => undefined): void {
  const config = app.get<AppConfig>(APP_CONFIG, { strict: false });
  let stopping = false;
  let phase = 'finishing in-flight work';
  const cutOff = (why: string) => {
    // console.error is synchronous on pipes and files, so the line is out before exit.
    console.error(`Shutdown cut short (${why}) while ${phase}: cut off ${describeWork(app)}; exiting 1`);
    process.exit(1);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return cutOff(`second ${signal}`);
    stopping = true;
    new Logger('Shutdown').log(`${signal}: /health/ready fails now; finishing in-flight work (drain ${config.shutdownDrainMs} ms, deadline ${config.shutdownTimeoutMs} ms)`);
    setTimeout(() => cutOff(`SHUTDOWN_TIMEOUT_MS ${config.shutdownTimeoutMs} ms passed`), config.shutdownDrainMs + config.shutdownTimeoutMs);
    stopApp(app, { drainMs: config.shutdownDrainMs, graceMs: Math.floor(config.shutdownTimeoutMs / 2) })
      .then(async (cut) => {
        phase = 'stopping embedded services';
        await after();
        if (cut.length > 0) {
          console.error(`Shutdown finished, but cut off ${cut.join('; ')}; exiting 1`);
          process.exit(1);
        }
        process.exit(0);
      })
      .catch((err) => {
        console.error(`Shutdown failed while ${phase}: ${(err as Error).message}`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

/** Messages joined into one answer; a body with many bad fields gets the first few, not megabytes. */
const MAX_VALIDATION_MESSAGES = 5;
const MAX_VALIDATION_MESSAGE_CHARS = 1000;

function validationMessage(errors: ValidationFailure[]): string {
  const messages = flattenValidation(errors);
  const shown = messages.slice(0, MAX_VALIDATION_MESSAGES).join('; ');
  const more = messages.length > MAX_VALIDATION_MESSAGES ? ` (and ${messages.length - MAX_VALIDATION_MESSAGES} more)` : '';
  return shown.length > MAX_VALIDATION_MESSAGE_CHARS ? `${shown.slice(0, MAX_VALIDATION_MESSAGE_CHARS)}…${more}` : shown + more;
}

/** class-validator nests errors; flatten them into messages that name the full field path (items.0.quantity). */
function flattenValidation(errors: ValidationFailure[], parent = ''): string[] {
  return errors.flatMap((e) => {
    const path = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((m) => (parent ? `${path}: ${m}` : m));
    return [...own, ...flattenValidation(e.children ?? [], path)];
  });
}
