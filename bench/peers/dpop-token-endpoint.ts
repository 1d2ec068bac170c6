/**
 * A token endpoint for the DPoP benchmark: answers `token_type: DPoP` when the request carries a
 * DPoP proof (as a binding server does), Bearer otherwise. It checks nothing; the tests do.
 */
import http from 'node:http';
import { announce } from './announce.js';

const EXPIRES_IN_S = 3_600;
let count = 0;

const server = http.createServer((req, res) => {
  req.resume();
  const n = ++count;
  const tokenType = req.headers.dpop === undefined ? 'Bearer' : 'DPoP';
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ access_token: `bench-token-${n}`, token_type: tokenType, expires_in: EXPIRES_IN_S }));
});
server.listen(0, '127.0.0.1', () => announce(server));
