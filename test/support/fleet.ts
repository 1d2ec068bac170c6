/**
 * Gateway replicas as real processes (`node dist/cli.js serve`), for the fleet tests: each one's
 * JSON log lines are parsed so a test can wait for an event instead of sleeping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

export type LogLine = Record<string, unknown>;

export interface Replica {
  readonly url: string;
  readonly admin: string;
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  /** Resolves with the first log line from index `from` on that matches. */
  waitForLog(match: (line: LogLine) => boolean, from?: number): Promise<LogLine>;
  /** SIGTERM and wait for the exit (no-op when it already exited). */
  stop(): Promise<void>;
}

export async function spawnReplica(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<Replica> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm test does)`);
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], {
    cwd: ROOT,
    env: { ...process.env, LOG_PRETTY: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const watchers = new Set<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  createInterface({ input: child.stdout }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    logs.push(line);
    for (const watcher of [...watchers]) {
      if (!watcher.match(line)) continue;
      watchers.delete(watcher);
      watcher.resolve(line);
    }
  });
  const waitForLog = (match: (line: LogLine) => boolean, from = 0): Promise<LogLine> => {
    const seen = logs.slice(from).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const watcher = { match, resolve };
      watchers.add(watcher);
      child.once('exit', (code) => {
        if (watchers.delete(watcher))
          reject(new Error(`gateway exited (${code}) while a test waited for a log line:\n${stderr.slice(-2000)}`));
      });
    });
  };
  const started = await waitForLog((line) => line.event === 'started');
  return {
    url: String(started.proxy),
    admin: String(started.admin),
    child,
    logs,
    waitForLog,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
