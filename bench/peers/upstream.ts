/**
 * The upstream every target forwards to, keep-alive: 1 KiB by default, or `size` bytes when the
 * query asks (`?size=65536`, for the curves of `npm run bench -- --curves`). `/events?count=N`
 * is a Server-Sent Events stream of N events, each written once the one before has gone out; a
 * WebSocket handshake on any path gets an echo server.
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { announce } from './announce.js';

const KIB = 1024;
const MAX_SIZE = 16 * KIB * KIB;
const bodies = new Map<number, { body: Buffer; headers: http.OutgoingHttpHeaders }>();

function answer(size: number): { body: Buffer; headers: http.OutgoingHttpHeaders } {
  let found = bodies.get(size);
  if (found === undefined) {
    const body = Buffer.alloc(size, 'x');
    found = { body, headers: { 'content-type': 'text/plain', 'content-length': String(body.length) } };
    bodies.set(size, found);
  }
  return found;
}

const SIZE = /[?&]size=(\d+)/;
const EVENTS = /^\/events\?count=(\d+)/;

function events(res: http.ServerResponse, count: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let sent = 0;
  const next = (): void => {
    if (sent === count) return void res.end();
    sent++;
    res.write(`id: ${sent}\ndata: event ${sent}\n\n`, next);
  };
  next();
}

const server = http.createServer((req, res) => {
  // Drain any request body so the connection can be reused.
  req.resume();
  const stream = EVENTS.exec(req.url ?? '');
  if (stream !== null) return events(res, Number(stream[1]));
  const asked = SIZE.exec(req.url ?? '');
  const { body, headers } = answer(asked === null ? KIB : Math.min(MAX_SIZE, Number(asked[1])));
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 60_000;
new WebSocketServer({ server }).on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
server.listen(0, '127.0.0.1', () => announce(server));
