/** The upstream every target forwards to: 1 KiB JSON-ish body, keep-alive. */
import http from 'node:http';
import { announce } from './announce.js';

const BODY = Buffer.alloc(1024, 'x');
const HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };

const server = http.createServer((req, res) => {
  // Drain any request body so the connection can be reused.
  req.resume();
  res.writeHead(200, HEADERS);
  res.end(BODY);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => announce(server));
