import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * The socket server multiplexes its clients' protocol messages onto PGlite's
 * one session, message by message: two clients' extended-protocol statements
 * collide, and one client's BEGIN … COMMIT wraps another's writes. So the app
 * opens exactly one connection (DATABASE_POOL_SIZE=1, set by the launcher)
 * and the pool queues requests for it; the second slot only lets the pool
 * replace a dropped connection before the server has seen the old one close.
 */
const MAX_CONNECTIONS = 2;

/**
 * PGlite (PostgreSQL compiled to WASM) served over the wire protocol, so the
 * same pg/TypeORM code runs unchanged, on 127.0.0.1 only.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  mkdirSync(dataDir, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(join(dataDir, 'pglite'));
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: MAX_CONNECTIONS });
  await server.start();
  const port = server.getServerConn().split(':').pop();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
