/**
 * A token endpoint that counts what it is asked: POST /token answers a Bearer token after
 * DELAY_MS (first argument), GET /count says how many token requests arrived.
 */
import http from 'node:http';
import { announce } from './announce.js';

/** Long enough that no refresh-ahead happens during a run (refresh starts at 75 % of it). */
const EXPIRES_IN_S = 3_600;
const delayMs = Number(process.argv[2] ?? 0);
let count = 0;

const server = http.createServer((req, res) => {
  req.resume();
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ count }));
    return;
  }
  count++;
  const n = count;
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ access_token: `bench-token-${n}`, token_type: 'Bearer', expires_in: EXPIRES_IN_S }));
  }, delayMs);
});
server.listen(0, '127.0.0.1', () => announce(server));
