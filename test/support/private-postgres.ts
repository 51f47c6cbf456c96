import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/launcher/embedded-redis';

const run = promisify(execFile);
const BIN = process.env.TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** PostgreSQL refuses to run as root: the cluster belongs to this user. */
const PG_USER = 'postgres';

/**
 * A PostgreSQL server owned by one test (initdb on a temporary directory, a
 * free port, trust auth), so the test can stop and start it under the app.
 * Run as root (as CI does), it runs the server as the `postgres` user.
 */
export class PrivatePostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'settle-pg-'));
    const pg = new PrivatePostgres(await freePort(), dir);
    if (userInfo().uid === 0) {
      const { stdout } = await run('id', ['-u', PG_USER]);
      const { stdout: gid } = await run('id', ['-g', PG_USER]);
      chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    await pg.as(join(BIN, 'initdb'), ['-D', pg.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    await pg.up();
    return pg;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** A URL to the server's default database. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Starts the server and waits until it accepts connections. */
  async up(): Promise<void> {
    // fsync off: the test's data is thrown away, and the machine's disk is shared.
    const options = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off -c max_connections=60`;
    await this.as(join(BIN, 'pg_ctl'), ['-D', this.dataDir, '-o', options, '-l', join(this.dir, 'server.log'), '-w', '-t', '30', 'start']);
  }

  /** Stops it at once (pg_ctl's immediate mode: connections are cut, as in a crash). */
  async down(): Promise<void> {
    await this.as(join(BIN, 'pg_ctl'), ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
  }

  /** Stops it if it runs and removes its files. */
  async destroy(): Promise<void> {
    await this.down().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async as(cmd: string, args: string[]): Promise<void> {
    if (userInfo().uid === 0) await run('runuser', ['-u', PG_USER, '--', cmd, ...args]);
    else await run(cmd, args);
  }
}
