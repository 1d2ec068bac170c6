/** The baseline: a bare http-proxy with a keep-alive agent and a static Authorization header. */
import http from 'node:http';
import httpProxy from 'http-proxy';
import { announce, STATIC_AUTHORIZATION, upstreamPort } from './announce.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' });
const proxy = httpProxy.createProxyServer({
  target: `http://127.0.0.1:${upstreamPort()}`,
  agent,
  headers: { authorization: STATIC_AUTHORIZATION },
});
proxy.on('error', (_error, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => announce(server));
