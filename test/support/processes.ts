/**
 * The built CLI as an operator runs it: `node dist/cli.js ...` in a child process (npm test builds
 * dist/ first). `serve` children log JSON lines on stdout; tests wait on those events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'cli.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

export type LogLine = Record<string, unknown>;

/** A `node dist/cli.js serve` child and its parsed log lines. */
export class ServeProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  /** stdout lines that were not JSON, and all of stderr. */
  readonly other: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: Array<() => void> = [];
  proxy = '';
  admin = '';

  private constructor(configFile: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], {
      cwd: ROOT,
      env: { ...env, LOG_LEVEL: 'debug', LOG_PRETTY: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((done) => this.child.on('close', (code, signal) => done({ code, signal })));
    void this.exited.then(() => this.#notify());
    let partial = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') continue;
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.other.push(line);
        }
      }
      this.#notify();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.other.push(chunk.toString('utf8')));
  }

  /** Spawns `serve` and resolves once both listeners are up (the `started` log line). */
  static async start(configFile: string, env: NodeJS.ProcessEnv = process.env): Promise<ServeProcess> {
    const serve = new ServeProcess(configFile, env);
    const started = await serve.waitForLog((line) => line.event === 'started');
    serve.proxy = String(started.proxy);
    serve.admin = String(started.admin);
    return serve;
  }

  /** The first log line (past or future) that satisfies `predicate`; rejects if the process exits first. */
  async waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const found = this.logs.find(predicate);
      if (found !== undefined) return found;
      if (exited) throw new Error(`serve exited before the awaited log line; output:\n${this.output()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for a log line; output:\n${this.output()}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, Math.max(0, deadline - Date.now()) + 1);
        this.#waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
  }

  /** Log lines with this `event`, in order. */
  events(event: string): LogLine[] {
    return this.logs.filter((line) => line.event === event);
  }

  output(): string {
    return [...this.logs.map((l) => JSON.stringify(l)), ...this.other].join('\n');
  }

  /** Stops the child if a test left it running. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
