/**
 * The keep-alive connections to one upstream origin (with one set of TLS settings): idle ones are
 * reused newest first, new ones are opened up to a limit, and requests beyond it wait their turn.
 * An idle connection is closed after IDLE_MS, before a node upstream's own 5 s keep-alive time-out
 * can close it under a request.
 */
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import { UpstreamConnection, type ConnectionOwner, type Http1Handler, type Http1Request } from './connection.js';

/** As undici's default keep-alive time-out: idle connections close after 4 s. */
const IDLE_MS = 4_000;
/** How often idle connections are looked at (a connection may stay idle up to IDLE_MS + SWEEP_MS). */
const SWEEP_MS = 1_000;

export interface PoolOptions {
  /** At most this many connections at once; requests beyond wait. */
  readonly connections: number;
  /** timeouts.connectMs: connecting (and the TLS handshake) must complete within it. */
  readonly connectMs: number;
  /** TLS options for an https origin (trust, client certificate). */
  readonly tls?: ConnectionOptions | undefined;
}

interface Waiting {
  readonly request: Http1Request;
  readonly handler: Http1Handler;
}

export class Http1Pool implements ConnectionOwner {
  readonly #host: string;
  readonly #port: number;
  readonly #secure: boolean;
  readonly #options: PoolOptions;
  readonly #idle: UpstreamConnection[] = [];
  readonly #all = new Set<UpstreamConnection>();
  #waiting: Waiting[] = [];
  #sweep: NodeJS.Timeout | undefined;
  #destroyed = false;

  constructor(origin: URL, options: PoolOptions) {
    this.#secure = origin.protocol === 'https:';
    // A literal IPv6 address comes in brackets ([::1]); the socket wants it without.
    this.#host = origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname;
    this.#port = origin.port === '' ? (this.#secure ? 443 : 80) : Number(origin.port);
    this.#options = options;
  }

  /** Sends `request` on an idle connection, a new one, or once one is free. */
  dispatch(request: Http1Request, handler: Http1Handler): void {
    if (this.#destroyed) return handler.onError(Object.assign(new Error('the upstream pool was closed'), { code: 'UND_ERR_DESTROYED' }));
    const idle = this.#idle.pop();
    if (idle !== undefined) return idle.send(request, handler);
    if (this.#all.size < this.#options.connections) return this.#open().send(request, handler);
    this.#waiting.push({ request, handler });
  }

  /** Closes every connection, cutting short what runs on them; requests still waiting fail. */
  destroy(): Promise<void> {
    this.#destroyed = true;
    clearInterval(this.#sweep);
    const error = Object.assign(new Error('the upstream pool was closed'), { code: 'UND_ERR_DESTROYED' });
    this.#failWaiting(error);
    const closing = [...this.#all].map((connection) => {
      const socket = connection.socket;
      if (socket.destroyed) return Promise.resolve();
      return new Promise<void>((done) => {
        socket.once('close', () => done());
        socket.destroy();
      });
    });
    return Promise.all(closing).then(() => undefined);
  }

  released(connection: UpstreamConnection): void {
    if (this.#destroyed) return void connection.socket.destroy();
    const next = this.#waiting.shift();
    if (next !== undefined) return connection.send(next.request, next.handler);
    connection.idleSince = performance.now();
    this.#idle.push(connection);
    this.#sweep ??= setInterval(sweepIdle, SWEEP_MS, this).unref();
  }

  removed(connection: UpstreamConnection, connectError: Error | undefined): void {
    this.#all.delete(connection);
    const at = this.#idle.indexOf(connection);
    if (at !== -1) this.#idle.splice(at, 1);
    if (this.#destroyed) return;
    // Connecting failed: the requests waiting would meet the same (undici failed them too).
    if (connectError !== undefined) return this.#failWaiting(connectError);
    const next = this.#waiting.shift();
    if (next !== undefined) this.#open().send(next.request, next.handler);
  }

  /** Idle connections past IDLE_MS are closed; the sweep stops with the last of them. */
  closeIdle(now: number): void {
    let kept = 0;
    for (const connection of this.#idle) {
      if (now - connection.idleSince >= IDLE_MS) connection.socket.destroy();
      else this.#idle[kept++] = connection;
    }
    this.#idle.length = kept;
    if (kept === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  #failWaiting(error: Error): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const { handler } of waiting) handler.onError(error);
  }

  #open(): UpstreamConnection {
    const { connectMs, tls: tlsOptions } = this.#options;
    const host = this.#host;
    const socket = this.#secure
      ? tls.connect({
          ...tlsOptions,
          host,
          port: this.#port,
          ...(net.isIP(host) === 0 && { servername: host }),
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({ host, port: this.#port });
    const connection = new UpstreamConnection(socket, this, connectMs, this.#secure);
    this.#all.add(connection);
    return connection;
  }
}

function sweepIdle(pool: Http1Pool): void {
  pool.closeIdle(performance.now());
}
