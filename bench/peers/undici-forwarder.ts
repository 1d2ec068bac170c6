/**
 * The same bare forwarder as forwarder.ts, on undici instead of node's http.request: one keep-alive
 * Pool, `dispatch` with a flat header list and a handler that receives the upstream's header lines
 * as raw buffers. It prices the engine alone, next to node's, in the same run.
 */
import http from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { announce, STATIC_AUTHORIZATION, upstreamPort } from './announce.js';

const pool = new Pool(`http://127.0.0.1:${upstreamPort()}`, { connections: 512, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'authorization']);

function forward(req: http.IncomingMessage, res: http.ServerResponse): void {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  headers.push('authorization', STATIC_AUTHORIZATION);
  const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
  let controller: Dispatcher.DispatchController | undefined;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(started) {
      controller = started;
    },
    onResponseStart(started, status) {
      const rawHeaders = started.rawHeaders as Buffer[];
      const out: string[] = [];
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i]!.toString('latin1');
        const lower = name.toLowerCase();
        if (lower !== 'connection' && lower !== 'keep-alive' && lower !== 'transfer-encoding')
          out.push(name, rawHeaders[i + 1]!.toString('latin1'));
      }
      res.writeHead(status, out);
    },
    onResponseData(started, chunk) {
      if (!res.write(chunk)) started.pause();
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError() {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  };
  res.on('drain', () => controller?.resume());
  pool.dispatch({ method: req.method as Dispatcher.HttpMethod, path: req.url!, headers, body: bodyless ? null : req }, handler);
}

const server = http.createServer(forward);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => announce(server));
