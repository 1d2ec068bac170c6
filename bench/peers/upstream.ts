/**
 * The upstream every target forwards to, keep-alive: 1 KiB by default, or `size` bytes when the
 * query asks (`?size=65536`, for the curves of `npm run bench -- --curves`).
 */
import http from 'node:http';
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

const server = http.createServer((req, res) => {
  // Drain any request body so the connection can be reused.
  req.resume();
  const asked = SIZE.exec(req.url ?? '');
  const { body, headers } = answer(asked === null ? KIB : Math.min(MAX_SIZE, Number(asked[1])));
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => announce(server));
