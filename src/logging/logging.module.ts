import { Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';

/** Header values a log line must never carry, wherever they appear. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["stripe-signature"]',
  'req.headers.cookie',
  '*.clientSecret',
  '*.client_secret',
  '*.secretKey',
  '*.webhookSecret',
  '*.adminApiKey',
];

/**
 * The request's id: the caller's X-Request-Id when it is a sane one, else a new
 * one; echoed back. Used by pino-http and by the webhook route, which runs outside it.
 */
export function requestIdFor(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

/**
 * JSON logs through pino. Every line of a request carries its id (taken from
 * X-Request-Id when the caller sends a sane one, else generated and echoed back).
 * Requests are logged as method, url and id only: no headers, no bodies, so no
 * secret, client secret or signature can leak through them.
 */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        pinoHttp: {
          level: config.logLevel,
          redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
          genReqId: requestIdFor,
          serializers: {
            req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
            res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
          },
          // Probes and scrapes every few seconds would drown the log.
          autoLogging: { ignore: (req: IncomingMessage) => req.url === '/health' || req.url === '/metrics' || req.url === '/health/ready' },
          customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) =>
            err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
        },
      }),
    }),
  ],
})
export class LoggingModule {}
