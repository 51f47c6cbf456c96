import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The Stripe CLI version the tests are written against (package.json's optionalDependencies). */
const CLI_VERSION = '1.52.0';

/**
 * The official Stripe CLI binary: STRIPE_CLI_PATH when set, else the one the
 * per-platform npm package holds (package.json installs @stripe/cli-linux-x64;
 * the @stripe/cli wrapper is not used because its optional packages for other
 * platforms are missing from the registry mirror, which broke `npm ci`). The
 * CLI runs with its own config home so it never reads a developer's login,
 * and without telemetry.
 */
export function stripeCliPath(): string {
  if (process.env.STRIPE_CLI_PATH) return process.env.STRIPE_CLI_PATH;
  const pkg = `@stripe/cli-${process.platform}-${process.arch}`;
  try {
    const bin = process.platform === 'win32' ? 'stripe.exe' : 'stripe';
    return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', bin);
  } catch {
    throw new Error(`No Stripe CLI binary for ${process.platform}-${process.arch}: run \`npm install --no-save ${pkg}@${CLI_VERSION}\`, or set STRIPE_CLI_PATH to a stripe binary`);
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class CliHome {
  readonly dir = mkdtempSync(join(tmpdir(), 'settle-stripe-cli-'));

  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: this.dir,
      XDG_CONFIG_HOME: join(this.dir, '.config'),
      STRIPE_CLI_TELEMETRY_OPTOUT: '1',
      NO_COLOR: '1',
    };
    delete env.STRIPE_API_KEY;
    delete env.STRIPE_DEVICE_NAME;
    return env;
  }

  /** Runs one command to completion. */
  run(args: string[], timeoutMs = 30000): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(stripeCliPath(), args, { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`stripe ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Starts a long-running command (`listen`). */
  start(args: string[]): CliProcess {
    return new CliProcess(spawn(stripeCliPath(), args, { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] }), args);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class CliProcess {
  private text = '';
  private exited = false;
  private readonly exit: Promise<number | null>;

  constructor(
    private readonly child: ChildProcess,
    private readonly args: string[],
  ) {
    child.stdout?.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
    this.exit = new Promise((resolve) => {
      child.on('close', (code) => {
        this.exited = true;
        resolve(code);
      });
    });
  }

  /** stdout and stderr together, as a person at the terminal sees them. */
  output(): string {
    return this.text;
  }

  /** Waits for the output to match, failing early if the CLI exits first. */
  async waitFor(pattern: RegExp, timeoutMs = 20000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const match = this.text.match(pattern);
      if (match) return match;
      if (this.exited) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`stripe ${this.args.join(' ')}: no ${pattern} in its output${this.exited ? ' (it exited)' : ''}:\n${this.text}`);
  }

  /** Interrupts it as ^C would, and kills it if it lingers. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await this.exit;
    clearTimeout(timer);
  }
}
