/**
 * A real Redis for the tests: Debian's redis-server on a free loopback port, no persistence, a
 * child of the test process. It can be stopped and started again on the same port (outage tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './servers.js';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Kills the server (SIGKILL, like a crash) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open, nothing is answered. */
  freeze(): void;
  /** Lets a frozen server go on (SIGCONT). */
  thaw(): void;
}

const READY = 'Ready to accept connections';

/** The options every test Redis runs with: loopback only, no persistence, in the foreground. */
export const redisArgs = (port: number): string[] => [
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
  '--daemonize',
  'no',
];

function launch(port: number): Promise<ChildProcess> {
  return launchRedis('redis-server', redisArgs(port));
}

/** Spawns `program` (redis-server or redis-sentinel) and resolves once its log shows `ready`. */
export function launchRedis(program: string, args: string[], ready = READY): Promise<ChildProcess> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes(ready)) {
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        child.stdout.resume();
        resolve(child);
      }
    };
    const onExit = (code: number | null) => reject(new Error(`${program} exited (${code}) before it was ready:\n${output.slice(-2000)}`));
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('exit', onExit);
  });
}

/**
 * Starts a redis-server; call stop() in after(). Guard the suite with
 * `requireProgram('redis-server', 'redis-server')` (support/programs.ts).
 */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      const running = child;
      child = undefined;
      if (running === undefined || running.exitCode !== null) return;
      const exited = once(running, 'exit');
      running.kill('SIGKILL'); // also ends a frozen server
      await exited;
    },
    async start() {
      if (child !== undefined) throw new Error('redis-server is already running');
      child = await launch(port);
    },
    freeze: () => void child?.kill('SIGSTOP'),
    thaw: () => void child?.kill('SIGCONT'),
  };
}
