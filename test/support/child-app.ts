import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

/** The compiled app (`node dist/main.js`) as a real child process, for tests of signals, crashes and logs. */
export class ChildApp {
  output = '';
  private constructor(private readonly child: ChildProcess, readonly url: string) {}

  /** `nodeArgs` go before the script, e.g. `--max-old-space-size=160` as `npm run start:prod` runs it. */
  static async start(env: Record<string, string>, options: { script?: string; cwd?: string; timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<ChildApp> {
    const timeoutMs = options.timeoutMs ?? 30000;
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), join(__dirname, '..', '..', 'dist', options.script ?? 'main.js')], {
      cwd: options.cwd,
      // No load balancer in front of a test: no drain wait unless a test asks for one.
      env: { PATH: process.env.PATH ?? '', SHUTDOWN_DRAIN_MS: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`app did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        // An HTTP role prints its URL; a worker has none and says it started.
        const match = /listening on (http:\/\/\S+)|Settle \(worker\) started()/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1] ?? '');
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`app exited with ${code} before listening:\n${output}`));
      });
    });
    const app = new ChildApp(child, url);
    app.output = output;
    child.stdout?.on('data', (c: Buffer) => (app.output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (app.output += c.toString()));
    return app;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Resolves with the exit code (or signal name) once the process is gone, without signalling it. */
  exited(): Promise<number | string> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve(this.child.exitCode ?? (this.child.signalCode as string));
      this.child.once('exit', (code, sig) => resolve(code ?? (sig as string)));
    });
  }

  /** Sends a signal without waiting. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Sends the signal and resolves with the exit code (or signal name) once the process is gone. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve(this.child.exitCode ?? (this.child.signalCode as string));
      this.child.once('exit', (code, sig) => resolve(code ?? (sig as string)));
      this.child.kill(signal);
    });
  }
}
