import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { connect as tcpConnect, Socket } from 'node:net';
import { Client } from 'pg';

/**
 * The embedded PGlite server keeps connections apart as separate PostgreSQL
 * sessions would, although PGlite is one session: each connection gets it for
 * a whole exchange (until Sync) or a whole transaction. The launcher also
 * gives the app only one connection; this holds for any other client too.
 */
/** The launcher's embedded server (dist/launcher/embedded-postgres.js) in a process of its own: PGlite loads as an ES module, which Jest's VM cannot. */
async function startServer(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const script = `require(${JSON.stringify(join(__dirname, '..', '..', 'dist', 'launcher', 'embedded-postgres.js'))})
    .startEmbeddedPostgres(${JSON.stringify(dataDir)})
    .then((pg) => { console.log('url ' + pg.url); process.on('SIGTERM', () => pg.stop().then(() => process.exit(0))); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /url (\S+)/.exec(out);
      if (match) resolve(match[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`embedded server exited with ${code}`)));
  });
  return { url, child };
}

/** A raw wire-protocol client, to send one extended-protocol exchange in pieces (pg sends it all at once). */
class RawClient {
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url);
    const socket = tcpConnect({ host: hostname, port: Number(port) });
    await new Promise((resolve) => socket.once('connect', resolve));
    const client = new RawClient(socket);
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0');
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + params.length, 0);
    head.writeInt32BE(196608, 4);
    socket.write(Buffer.concat([head, params]));
    await client.readUntilReady();
    return client;
  }

  send(type: string, body: Buffer): void {
    const head = Buffer.alloc(5);
    head.write(type, 0, 'ascii');
    head.writeInt32BE(4 + body.length, 1);
    this.socket.write(Buffer.concat([head, body]));
  }

  /** Messages up to and including ReadyForQuery, as [type, body]. */
  async readUntilReady(): Promise<Array<[string, Buffer]>> {
    const messages: Array<[string, Buffer]> = [];
    for (;;) {
      while (this.buffer.length >= 5 && this.buffer.length >= 1 + this.buffer.readInt32BE(1)) {
        const length = this.buffer.readInt32BE(1);
        const message: [string, Buffer] = [String.fromCharCode(this.buffer[0] as number), this.buffer.subarray(5, 1 + length)];
        this.buffer = this.buffer.subarray(1 + length);
        messages.push(message);
        if (message[0] === 'Z') return messages;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

const cstr = (s: string) => Buffer.from(`${s}\0`);
const int16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

describe('embedded PGlite over the wire: every connection as if on its own session', () => {
  let dir: string;
  let pg: { url: string; child: ChildProcess };
  const clients: Client[] = [];

  const connect = async () => {
    const client = new Client({ connectionString: pg.url });
    await client.connect();
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'settle-pglite-'));
    pg = await startServer(dir);
    const setup = await connect();
    await setup.query('CREATE TABLE t (id int PRIMARY KEY, owner text NOT NULL)');
  }, 60000);
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    if (pg) await new Promise((resolve) => (pg.child.once('exit', resolve), pg.child.kill('SIGTERM')));
    rmSync(dir, { recursive: true, force: true });
  });

  it('parameterized statements of concurrent connections never collide', async () => {
    const conns = await Promise.all(Array.from({ length: 6 }, connect));
    const results = await Promise.all(
      conns.map(async (c, k) => {
        const wrong: string[] = [];
        for (let i = 0; i < 60; i++) {
          // Different parameter counts per connection: a Bind meant for another connection's Parse fails loudly.
          const params = Array.from({ length: k + 1 }, (_, j) => i * 10 + j);
          const sql = `SELECT ${params.map((_, j) => `$${j + 1}::int`).join(' + ')} AS sum`;
          const { rows } = await c.query(sql, params);
          const expected = params.reduce((a, b) => a + b, 0);
          if (rows[0].sum !== expected) wrong.push(`${k}/${i}: ${rows[0].sum} != ${expected}`);
        }
        return wrong;
      }),
    );
    expect(results.flat()).toEqual([]);
  }, 60000);

  it("another connection's statement never slips between one connection's Parse and its Bind", async () => {
    const raw = await RawClient.open(pg.url);
    try {
      // Parse the unnamed statement, then pause before Bind/Execute/Sync.
      raw.send('P', Buffer.concat([cstr(''), cstr('SELECT $1::int AS v'), int16(0)]));
      await new Promise((r) => setTimeout(r, 100));
      // Another connection's two-parameter statement, sent meanwhile: it must wait for the raw client's Sync.
      const other = connect().then((c) => c.query('SELECT $1::int + $2::int AS v', [1, 2]));
      const rawExchange = (async () => {
        await new Promise((r) => setTimeout(r, 200));
        raw.send('B', Buffer.concat([cstr(''), cstr(''), int16(0), int16(1), int32(2), Buffer.from('41'), int16(0)]));
        raw.send('E', Buffer.concat([cstr(''), int32(0)]));
        raw.send('S', Buffer.alloc(0));
        return raw.readUntilReady();
      })();
      const messages = await rawExchange;
      expect(messages.filter(([type]) => type === 'E').map(([, body]) => body.toString())).toEqual([]);
      const row = messages.find(([type]) => type === 'D')?.[1];
      expect(row?.subarray(6).toString()).toBe('41');
      expect((await other).rows[0].v).toBe(3);
    } finally {
      raw.close();
    }
  }, 60000);

  it("one connection's transaction neither sees nor is committed or rolled back by another's", async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    await a.query('BEGIN');
    await a.query('INSERT INTO t (id, owner) VALUES (1, $1)', ['a']);
    // b waits for a's transaction to end (a holds the session), then runs its own.
    const bWork = (async () => {
      await b.query('BEGIN');
      const seen = await b.query('SELECT count(*)::int AS n FROM t');
      await b.query('INSERT INTO t (id, owner) VALUES (2, $1)', ['b']);
      await b.query('ROLLBACK');
      return seen.rows[0].n as number;
    })();
    await new Promise((r) => setTimeout(r, 200));
    await a.query('COMMIT');
    // b saw a's committed row only, and its rollback removed its own row, not a's.
    expect(await bWork).toBe(1);
    const { rows } = await a.query('SELECT id, owner FROM t ORDER BY id');
    expect(rows).toEqual([{ id: 1, owner: 'a' }]);
  }, 60000);

  it('a connection that drops inside a transaction is rolled back and frees the session', async () => {
    const a = await connect();
    await a.query('BEGIN');
    await a.query('INSERT INTO t (id, owner) VALUES (3, $1)', ['dropped']);
    // b's connection waits for the session while a holds it in a transaction.
    const bCount = connect().then((b) => b.query('SELECT count(*)::int AS n FROM t WHERE id = 3'));
    await new Promise((r) => setTimeout(r, 200));
    a.on('error', () => undefined);
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    expect((await bCount).rows[0].n).toBe(0);
  }, 60000);
});
