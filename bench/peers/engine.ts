/**
 * A prototype for measurement only: tokengate's own per-request work (its route matching, header
 * hygiene, request id, token-cache lookup, metrics), done with tokengate's own modules, but
 * forwarded with node's http.request instead of http-proxy. Beside the gateway it prices the
 * forwarding engine. No 401 replay, access policy or upstream error mapping: not a gateway.
 * Usage: engine.ts CONFIG_FILE (the benchmark's generated gateway config).
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Counter } from 'prom-client';
import { Metrics } from '../../src/admin/metrics.js';
import { Usage } from '../../src/admin/usage.js';
import { loadConfig } from '../../src/config/load.js';
import { compileRoutes } from '../../src/proxy/handler.js';
import { acceptRequestId, endToEndHeaders, prepareUpstreamHeaders } from '../../src/proxy/headers.js';
import { normalizePath, splitTarget } from '../../src/routing/path.js';
import { hostName, upstreamPath } from '../../src/routing/router.js';
import { TokenProvider, type CachedToken, type SharedTokenStore } from '../../src/tokens/provider.js';
import { announce } from './announce.js';

const config = loadConfig(process.argv[2] ?? '', { env: process.env });
const metrics = new Metrics();
const runtime = compileRoutes(config, metrics, new Usage(), new Map());
// Tokens come from this stub, so the benchmark's token endpoint counts only the gateway's requests.
const now = Date.now();
const token: CachedToken = { accessToken: 'bench-engine-token', scope: undefined, obtainedAt: now, expiresAt: now + 3_600_000, usableUntil: now + 3_570_000, refreshAt: Number.POSITIVE_INFINITY };
const store: SharedTokenStore = {
  get: () => Promise.resolve(token),
  fetch: () => Promise.resolve(token),
  invalidate: () => Promise.resolve(),
  close: () => Promise.resolve(),
};
const provider = new TokenProvider(config.connections.values(), { tokenRequest: () => undefined, tokenFailure: () => undefined }, store);
for (const { data } of runtime.router.routes) if (data.key !== undefined) await provider.get(data.key);

const counted = new Map<string, Counter.Internal>();

function handle(req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  const requestId = acceptRequestId(req.headers['x-request-id']) ?? randomUUID();
  res.setHeader('x-request-id', requestId);
  const method = req.method ?? 'GET';
  const { path: rawPath, query } = splitTarget(req.url ?? '/');
  const path = normalizePath(rawPath);
  const matched = path === undefined ? undefined : runtime.router.match(method, hostName(req.headers.host), path);
  if (path === undefined || matched === undefined) {
    res.writeHead(404).end();
    return;
  }
  const route = matched.data;
  res.once('finish', () => {
    route.duration.observe((performance.now() - started) / 1000);
    const id = `${method} ${res.statusCode}`;
    let child = counted.get(id);
    if (child === undefined) {
      child = metrics.requests.labels({ route: route.name, method, code: String(res.statusCode) });
      counted.set(id, child);
    }
    child.inc();
  });
  const cached = route.key === undefined ? undefined : provider.peek(route.key);
  route.hits?.inc();
  prepareUpstreamHeaders(req.headers, route.upstreamHost, requestId, { remoteAddress: req.socket.remoteAddress, proto: 'http', host: req.headers.host }, undefined);
  if (cached !== undefined) req.headers.authorization = `Bearer ${cached.accessToken}`;
  const target = route.proxyOptions.target as unknown as { hostname: string; port: string };
  const upstream = http.request(
    { host: target.hostname, port: target.port, method, path: upstreamPath(route.route, route.basePath, path) + query, headers: req.headers, agent: route.proxyOptions.agent },
    (answer) => {
      const headers = endToEndHeaders(answer.headers);
      delete headers['x-request-id'];
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    },
  );
  upstream.setTimeout(route.route.timeouts.responseMs, () => upstream.destroy());
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
}

const server = http.createServer(handle);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => announce(server));
