import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

export interface ChosenRedis {
  url: string;
  /** How it was found, for the launcher's summary. */
  origin: string;
  stop(): Promise<void>;
}

/** REDIS_URL, else one answering on 127.0.0.1:6379, else a redis-server from PATH on a free port; null when none. */
export async function chooseRedis(configured: string | undefined): Promise<ChosenRedis | null> {
  const none = async () => undefined;
  if (configured) return { url: configured, origin: 'REDIS_URL', stop: none };
  if (await answersPing('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', origin: 'found on 127.0.0.1:6379', stop: none };
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !(await answersPing('127.0.0.1', port)); i++) await sleep(100);
  if (!(await answersPing('127.0.0.1', port))) {
    child.kill();
    return null;
  }
  return { url: `redis://127.0.0.1:${port}`, origin: `redis-server started on port ${port}`, stop: () => stopChild(child) };
}

function answersPing(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
