import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Reads a /proc/<pid>/status field in kB (VmRSS: now, VmHWM: the kernel's peak); undefined once the process is gone. */
export function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A server under test in its own process, so its event loop and memory are
 * its own and not the load generator's. It must print `listening on http://…`.
 */
export class ServerProcess {
  private output = '';
  private peakRssKb = 0;
  private sampler?: NodeJS.Timeout;

  private constructor(readonly name: string, private readonly child: ChildProcess, readonly url: string) {}

  static async start(
    name: string,
    script: string,
    env: Record<string, string>,
    options: { nodeArgs?: string[]; timeoutMs?: number; ready?: RegExp; cwd?: string } = {},
  ): Promise<ServerProcess> {
    const ready = options.ready ?? /listening on (http:\/\/\S+)/;
    const timeoutMs = options.timeoutMs ?? 60_000;
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script], {
      env: { PATH: process.env.PATH ?? '', ...env },
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
      const onData = () => {
        const match = ready.exec(output);
        if (match) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(match[1] ?? '');
        }
      };
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before listening:\n${output}`));
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
    });
    const server = new ServerProcess(name, child, url);
    child.stdout?.off('data', collect);
    child.stderr?.off('data', collect);
    server.output = output;
    const keep = (chunk: Buffer) => {
      server.output += chunk.toString();
      if (server.output.length > 200_000) server.output = server.output.slice(-100_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    server.sampler = setInterval(() => server.sampleRss(), 100);
    server.sampler.unref();
    return server;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get log(): string {
    return this.output;
  }

  private sampleRss(): void {
    const rss = procStatusKb(this.pid, 'VmRSS');
    if (rss !== undefined) this.peakRssKb = Math.max(this.peakRssKb, rss);
  }

  rssMb(): number | undefined {
    const kb = procStatusKb(this.pid, 'VmRSS');
    return kb === undefined ? undefined : kb / 1024;
  }

  /** Peak resident set size in MB: the kernel's high-water mark (VmHWM), or the highest 100 ms sample. */
  peakRssMb(): number {
    this.sampleRss();
    const hwm = procStatusKb(this.pid, 'VmHWM');
    return Math.max(hwm ?? 0, this.peakRssKb) / 1024;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs = 15_000): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      const kill = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      this.child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      this.child.kill('SIGTERM');
    });
  }
}
