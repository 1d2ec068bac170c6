/** Plumbing for the benchmark: child processes, free ports, RSS, load runs and their statistics. */
import autocannon from 'autocannon';
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import type { Announcement } from './peers/announce.js';

export const CONNECTIONS = 50;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

export interface Peer {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
// A benchmark that dies half-way must not leave servers behind.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      const force = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      child.once('exit', () => {
        clearTimeout(force);
        done();
      });
      child.kill('SIGTERM');
    });
}

/**
 * CPU pinning (Linux `taskset`, 2 or more CPUs): the load generator and the upstream share CPU 0,
 * the server under test has CPU 1 to itself. Without it the three compete for two cores and a
 * target's figures move ±30 % from one round to the next with whatever else the scheduler does.
 */
export const PINNING: { readonly load: string; readonly server: string } | undefined = (() => {
  // --quick runs inside `npm test`, beside other test files: it leaves the scheduler alone.
  if (process.argv.includes('--no-pin') || process.argv.includes('--quick') || process.platform !== 'linux' || cpus().length < 2)
    return undefined;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return { load: '0', server: '1' };
  } catch {
    return undefined;
  }
})();

/** Pins every thread of `pid` (threads it starts later inherit it) to `cpu`, when pinning is on. */
export function pin(pid: number | undefined, cpu: string | undefined): void {
  if (PINNING === undefined || pid === undefined || cpu === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' });
}

/** Forks a peer from bench/peers/ and waits until it listens. */
export function forkPeer(name: string, file: string, args: string[] = [], nodeArgs: string[] = [], cpu?: string): Promise<Peer> {
  const child = track(fork(file, args, { execArgv: ['--import', 'tsx', ...nodeArgs], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  pin(child.pid, cpu);
  return new Promise((done, fail) => {
    const early = (code: number | null) => fail(new Error(`${name} exited (${code}) before listening`));
    child.once('exit', early);
    child.once('message', (message: Announcement) => {
      child.off('exit', early);
      done({ name, port: message.port, url: `http://127.0.0.1:${message.port}`, child, stop: stopper(child) });
    });
  });
}

/**
 * Spawns a server program and waits until `readyUrl` answers 200. `stdout: 'drain'` gives it a
 * pipe to a `cat` of its own that discards what it reads, as a container runtime or journald reads
 * a service's stdout. (A regular file was the sink once; then this process read the pipe, which
 * made the load generator's own event loop, and so its latencies, pay for the gateway's logging.)
 */
export async function spawnServer(
  name: string,
  command: string,
  args: string[],
  port: number,
  readyUrl: string,
  stdout: 'drain' | 'ignore',
  cpu?: string,
): Promise<Peer> {
  // Through taskset, so that processes the server forks (nginx's workers) are pinned too.
  const pinned = PINNING !== undefined && cpu !== undefined;
  const reader = stdout === 'drain' ? track(spawn('cat', [], { stdio: ['pipe', 'ignore', 'inherit'] })) : undefined;
  pin(reader?.pid, PINNING?.load);
  const child = track(
    spawn(pinned ? 'taskset' : command, pinned ? ['-c', cpu, command, ...args] : args, {
      stdio: ['ignore', reader?.stdin ?? 'ignore', 'inherit'],
    }),
  );
  // The server holds the pipe's write end now; once it exits, cat reads end-of-file and exits too.
  reader?.stdin?.destroy();
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before it was ready`);
    const status = await getStatus(readyUrl).catch(() => 0);
    if (status === 200) break;
    if (Date.now() > deadline) throw new Error(`${name} not ready after ${READY_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { name, port, url: `http://127.0.0.1:${port}`, child, stop: stopper(child) };
}

/** The repository's root: the built CLI is `dist/cli.js` below it. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A gateway on two free ports, on the server CPU: writes `configFile` from `yaml(port, adminPort)`,
 * starts `node [nodeArgs] <cli> serve --config configFile` and waits for its /readyz.
 */
export async function spawnGateway(
  name: string,
  configFile: string,
  yaml: (port: number, adminPort: number) => string,
  options: { cli?: string; nodeArgs?: string[] } = {},
): Promise<Peer> {
  const [port, adminPort] = [await freePort(), await freePort()];
  writeFileSync(configFile, yaml(port, adminPort));
  const cli = [...(options.nodeArgs ?? []), options.cli ?? join(ROOT, 'dist', 'cli.js'), 'serve', '--config', configFile];
  return spawnServer(name, process.execPath, cli, port, `http://127.0.0.1:${adminPort}/readyz`, 'drain', PINNING?.server);
}

/** A port that was free a moment ago (for programs that cannot announce one). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = http.createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => done(port));
    });
  });
}

const probeAgent = new http.Agent({ keepAlive: false });

export function getStatus(url: string): Promise<number> {
  return new Promise((done, fail) => {
    http
      .get(url, { agent: probeAgent }, (res) => {
        res.resume();
        res.once('end', () => done(res.statusCode ?? 0));
      })
      .once('error', fail);
  });
}

export function getJson<T>(url: string): Promise<T> {
  return new Promise((done, fail) => {
    http
      .get(url, { agent: probeAgent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () => done(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T));
      })
      .once('error', fail);
  });
}

/** Resident set size of a process, from /proc (Linux), or `ps` elsewhere. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (match !== null) return Number(match[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) * 1024;
}

/**
 * CPU time (user + system) a process and the processes it started (nginx's worker) have used so
 * far, in seconds, from /proc (NaN elsewhere).
 */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let seconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    for (const child of childPids(pid)) {
      const more = cpuSeconds(child);
      if (Number.isFinite(more)) seconds += more;
    }
    return seconds;
  } catch {
    return Number.NaN;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((text) => text !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** USER_HZ: 100 on every Linux architecture node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface LoadOptions {
  readonly url: string;
  readonly duration?: number;
  readonly amount?: number;
  readonly overallRate?: number;
  /** Concurrent connections [CONNECTIONS]. */
  readonly connections?: number;
  /** Paths each connection requests in turn (on the url's origin), instead of the url's own. */
  readonly paths?: readonly string[];
  /** The serving process, whose CPU time per request is measured. */
  readonly pid?: number;
}

export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  /** Bytes read from the server per second, headers and bodies. */
  readonly bytesPerSecond: number;
  /** Connection errors, time-outs and non-2xx answers. */
  readonly errors: number;
  /**
   * CPU time the serving process spent per request, in microseconds: unlike req/s, barely moved
   * by other processes competing for the same cores.
   */
  readonly cpuMicrosPerRequest: number;
}

/**
 * One autocannon run. Latencies are recorded from each response with sub-millisecond precision
 * (autocannon's own histogram rounds to whole milliseconds, too coarse for a 1 ms budget).
 */
export function load(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  const { pid, paths, ...run } = options;
  const cpuBefore = pid === undefined ? Number.NaN : cpuSeconds(pid);
  const requests = paths?.map((path) => ({ method: 'GET', path }));
  return new Promise((done, fail) => {
    const instance = autocannon({ connections: CONNECTIONS, timeout: 10, ...run, ...(requests && { requests }) }, (error, result) => {
      if (error !== null) return fail(error);
      const cpu = pid === undefined ? Number.NaN : cpuSeconds(pid) - cpuBefore;
      latencies.sort((a, b) => a - b);
      done({
        requestsPerSecond: result.requests.total / result.duration,
        p50Ms: percentile(latencies, 0.5),
        p99Ms: percentile(latencies, 0.99),
        requests: result.requests.total,
        bytesPerSecond: result.throughput.total / result.duration,
        errors: result.errors + result.timeouts + result.non2xx,
        cpuMicrosPerRequest: (cpu * 1e6) / result.requests.total,
      });
    });
    instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms));
  });
}

/** `sorted` ascending; nearest-rank percentile. */
export function percentile(sorted: readonly number[], share: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)]!;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** 500 (or `count`) requests at once on fresh connections; resolves with their status codes. */
export function burst(url: string, count: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const one = () =>
    new Promise<number>((done) => {
      http
        .get(url, { agent }, (res) => {
          res.resume();
          res.once('end', () => done(res.statusCode ?? 0));
        })
        .once('error', () => done(0));
    });
  return Promise.all(Array.from({ length: count }, one));
}

/** Messages (WebSocket) or events (SSE) through one target: their rate and the CPU each cost the server. */
export interface StreamResult {
  readonly perSecond: number;
  readonly count: number;
  readonly errors: number;
  /** CPU time of the serving process per message or event, in microseconds. */
  readonly cpuMicrosPer: number;
}

function streamResult(count: number, errors: number, started: number, cpuBefore: number, pid: number | undefined): StreamResult {
  const seconds = (performance.now() - started) / 1000;
  const cpu = pid === undefined ? Number.NaN : cpuSeconds(pid) - cpuBefore;
  return { perSecond: count / seconds, count, errors, cpuMicrosPer: (cpu * 1e6) / count };
}

/**
 * WebSocket echo: `connections` callers each send a message of `size` bytes and wait for its echo,
 * then send the next, `messages` times. Connecting is not measured: the rate is of messages.
 */
export async function webSocketEcho(options: {
  url: string;
  connections: number;
  messages: number;
  size: number;
  pid?: number;
}): Promise<StreamResult> {
  const payload = Buffer.alloc(options.size, 'm');
  const sockets = await Promise.all(
    Array.from(
      { length: options.connections },
      () =>
        new Promise<WebSocket>((done, fail) => {
          const ws = new WebSocket(options.url);
          ws.once('open', () => done(ws));
          ws.once('error', fail);
        }),
    ),
  );
  let count = 0;
  let errors = 0;
  const cpuBefore = options.pid === undefined ? Number.NaN : cpuSeconds(options.pid);
  const started = performance.now();
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((done) => {
          let left = options.messages;
          ws.on('message', (data: Buffer) => {
            if (data.length === payload.length) count++;
            else errors++;
            if (--left === 0) return done();
            ws.send(payload);
          });
          ws.once('close', () => {
            errors += left;
            done();
          });
          ws.send(payload);
        }),
    ),
  );
  const result = streamResult(count, errors, started, cpuBefore, options.pid);
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise((done) => {
          ws.once('close', done);
          ws.close();
        }),
    ),
  );
  return result;
}

/** Server-Sent Events: `streams` callers at once each read a stream of `events` events (`url` + `?count=`). */
export async function eventStreams(options: { url: string; streams: number; events: number; pid?: number }): Promise<StreamResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  let count = 0;
  let errors = 0;
  const cpuBefore = options.pid === undefined ? Number.NaN : cpuSeconds(options.pid);
  const started = performance.now();
  const one = () =>
    new Promise<void>((done) => {
      http
        .get(`${options.url}?count=${options.events}`, { agent }, (res) => {
          let seen = 0;
          let tail = '';
          res.setEncoding('utf8');
          res.on('data', (text: string) => {
            const parts = (tail + text).split('\n\n');
            tail = parts.pop()!;
            seen += parts.length;
          });
          res.once('end', () => {
            count += seen;
            errors += options.events - seen;
            done();
          });
        })
        .once('error', () => {
          errors += options.events;
          done();
        });
    });
  await Promise.all(Array.from({ length: options.streams }, one));
  agent.destroy();
  return streamResult(count, errors, started, cpuBefore, options.pid);
}
