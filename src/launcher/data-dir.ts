import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** The launcher refuses to go on; its message is the one line the user sees. */
export class LaunchRefused extends Error {}

/**
 * Takes `<dataDir>/settle.pid` for this process. PGlite is one process's
 * database: a second process on the same files would corrupt them, so it is
 * refused while the pid in the file is alive. A file left by a killed process
 * (its pid gone) is taken over. Released when the process exits.
 */
export function lockDataDir(dataDir: string, shownAs: string): void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'settle.pid');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      process.once('exit', () => releaseIfOurs(path));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(readQuietly(path));
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new LaunchRefused(
        `${shownAs} is in use by another Settle (pid ${holder}); the embedded database allows one process: stop that one, or set DATABASE_URL to share a PostgreSQL server`,
      );
    }
    // Left behind by a process that no longer runs (or half-written): take it over.
    try {
      unlinkSync(path);
    } catch {
      // Another starter removed it first; the next openSync decides.
    }
  }
  throw new LaunchRefused(`could not take ${shownAs}settle.pid; is another Settle starting on it?`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseIfOurs(path: string): void {
  if (readQuietly(path) === String(process.pid)) {
    try {
      unlinkSync(path);
    } catch {
      // Gone already.
    }
  }
}

function readQuietly(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * The mock PSP's signing secret for this data directory: random, made on
 * first start and kept in `<dataDir>/mock-webhook-secret` (mode 0600), so it
 * stays the same across restarts (a running `stripe listen` keeps working) and
 * is never the public default from the source.
 */
export function mockWebhookSecret(dataDir: string): { secret: string; path: string; created: boolean } {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'mock-webhook-secret');
  const existing = readQuietly(path);
  if (existing && /^whsec_\S{16,}$/.test(existing)) return { secret: existing, path, created: false };
  const secret = `whsec_${randomBytes(24).toString('base64url')}`;
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return { secret, path, created: true };
}
