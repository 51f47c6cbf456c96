import { mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

interface Pending {
  handlerId: number;
  message: Uint8Array;
  onData(data: Uint8Array): void;
  resolve(bytes: number): void;
  reject(err: Error): void;
}

// Frontend message types that end an exchange: Sync (extended protocol), Query (simple), Terminate.
const SYNC = 0x53;
const QUERY = 0x51;
const TERMINATE = 0x58;

/**
 * Hands PGlite's one session to one client connection at a time, for a whole
 * exchange: from a connection's first message until PGlite has answered its
 * Sync or simple Query (or its startup) outside a transaction. So two
 * connections' extended-protocol messages never interleave, and a
 * transaction runs alone from BEGIN to COMMIT, as on its own session.
 * (pglite-socket's own queue switches connections between single messages
 * outside transactions: unnamed statements and portals of one connection
 * were bound or executed by another.) It implements the queue interface
 * pglite-socket's PGLiteSocketHandler calls.
 */
export class SessionQueue {
  private pending: Pending[] = [];
  private owner: number | null = null;
  private running = false;

  constructor(private readonly db: PGlite) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ handlerId, message, onData, resolve, reject });
      void this.run();
    });
  }

  getQueueLength(): number {
    return this.pending.length;
  }

  /** The connection went away: its queued messages are dropped. */
  clearQueueForHandler(handlerId: number): void {
    const dropped = this.pending.filter((p) => p.handlerId === handlerId);
    this.pending = this.pending.filter((p) => p.handlerId !== handlerId);
    for (const p of dropped) p.reject(new Error('connection closed'));
  }

  /** The connection went away while it held the session: roll its transaction back and let the others in. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.owner !== handlerId) return;
    // exec takes PGlite's own lock (runExclusive around it would wait on itself).
    if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    this.owner = null;
    void this.run();
  }

  private next(): Pending | undefined {
    const index = this.owner === null ? 0 : this.pending.findIndex((p) => p.handlerId === this.owner);
    return index >= 0 && index < this.pending.length ? this.pending.splice(index, 1)[0] : undefined;
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let item = this.next(); item; item = this.next()) {
        this.owner = item.handlerId;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
          item.resolve(bytes);
        } catch (err) {
          item.reject(err as Error);
        }
        // A startup message has no type byte: its first byte is the high byte of its length, 0.
        const type = item.message[0];
        const endsExchange = type === SYNC || type === QUERY || type === TERMINATE || type === 0;
        if (endsExchange && !this.db.isInTransaction()) this.owner = null;
      }
    } finally {
      this.running = false;
    }
  }
}

/**
 * PGlite (PostgreSQL compiled to WASM) served over the wire protocol on
 * 127.0.0.1, so the same pg/TypeORM code runs unchanged. Each connection is
 * pglite-socket's PGLiteSocketHandler, all behind one SessionQueue. The app
 * uses two connections in one pool (the launcher sets DATABASE_POOL_SIZE=2,
 * so the intake shares it): the reconciler holds one, idle between its
 * exchanges, for its election while its pass and everything else take turns
 * on the other; no transaction waits for a second connection.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  mkdirSync(dataDir, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketHandler } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(join(dataDir, 'pglite'));
  const queue = new SessionQueue(db);
  type Handler = InstanceType<typeof PGLiteSocketHandler>;
  const handlers = new Set<Handler>();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const handler = new PGLiteSocketHandler({ queryQueue: queue as unknown as ConstructorParameters<typeof PGLiteSocketHandler>[0]['queryQueue'], closeOnDetach: true });
    handlers.add(handler);
    const forget = () => handlers.delete(handler);
    handler.addEventListener('close', forget);
    handler.addEventListener('error', forget);
    handler.attach(socket).catch(() => {
      forget();
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      for (const handler of handlers) await handler.detach(true).catch(() => undefined);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.close();
    },
  };
}
