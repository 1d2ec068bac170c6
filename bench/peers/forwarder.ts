/**
 * The engine tokengate forwards with, doing nothing else: node's own http.request with a
 * keep-alive agent and a static Authorization header, no proxy library. It shows how much of the
 * gap to "direct" is the engine rather than the gateway's own work.
 */
import http from 'node:http';
import { announce, STATIC_AUTHORIZATION, upstreamPort } from './announce.js';

const port = upstreamPort();
const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' });

const server = http.createServer((req, res) => {
  const headers = req.headers;
  delete headers.connection;
  headers.authorization = STATIC_AUTHORIZATION;
  const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent }, (answer) => {
    delete answer.headers.connection;
    delete answer.headers['keep-alive'];
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => announce(server));
