/**
 * The same bare forwarder as forwarder.ts, on tokengate's own upstream client (src/proxy/http1/,
 * decision 0008): node's HTTP server, one keep-alive Http1Pool, the caller's lines with a static
 * Authorization header, the answer's lines raw. It prices the engine tokengate forwards with alone,
 * beside node's http.request and undici, in the same run.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Http1Handler } from '../../src/proxy/http1/connection.js';
import { Http1Pool } from '../../src/proxy/http1/pool.js';
import { announce, STATIC_AUTHORIZATION, upstreamPort } from './announce.js';

const port = upstreamPort();
const pool = new Http1Pool(new URL(`http://127.0.0.1:${port}`), { connections: 512, connectMs: 5_000 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'authorization']);

class Forward implements Http1Handler {
  readonly #res: http.ServerResponse;
  #resume: (() => void) | undefined;
  readonly #onDrain = (): void => this.#resume?.();

  constructor(res: http.ServerResponse) {
    this.#res = res;
  }

  onConnect(): void {
    // nothing to abort: the bench's callers never leave early
  }

  onHeaders(status: number, raw: string[], resume: () => void): boolean {
    if (status < 200) return true;
    this.#resume = resume;
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const lower = raw[i]!.toLowerCase();
      if (lower !== 'connection' && lower !== 'keep-alive' && lower !== 'transfer-encoding') out.push(raw[i]!, raw[i + 1]!);
    }
    this.#res.writeHead(status, out);
    return true;
  }

  onReadEnd(): void {
    // the bench's answers come whole
  }

  onData(chunk: Buffer): boolean {
    if (this.#res.write(chunk)) return true;
    this.#res.once('drain', this.#onDrain);
    return false;
  }

  onComplete(): void {
    this.#res.end();
  }

  onUpgrade(_status: number, _raw: string[], socket: Duplex): void {
    socket.destroy();
  }

  onError(): void {
    if (!this.#res.headersSent) this.#res.writeHead(502);
    this.#res.end();
  }
}

function forward(req: http.IncomingMessage, res: http.ServerResponse): void {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  headers.push('host', `127.0.0.1:${port}`, 'authorization', STATIC_AUTHORIZATION);
  const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
  pool.dispatch({ method: req.method!, path: req.url!, headers, body: bodyless ? null : req, headersTimeoutMs: 30_000 }, new Forward(res));
}

const server = http.createServer(forward);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => announce(server));
