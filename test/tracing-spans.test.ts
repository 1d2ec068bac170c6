/**
 * Traces exported over OTLP/HTTP to a collector on a real socket: one trace per request, the token
 * fetch and the upstream attempts as CLIENT children of the SERVER span, the upstream handed a
 * traceparent of its CLIENT span, callers' traces continued (or left unrecorded when unsampled),
 * and no credential or query value anywhere in the exported bytes.
 */
import assert from 'node:assert/strict';
import { once, EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { metricValue } from './support/faults.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import {
  SPAN_KIND_CLIENT,
  SPAN_KIND_SERVER,
  STATUS_ERROR,
  STATUS_UNSET,
  startCollector,
  type CollectedSpan,
  type Collector,
} from './support/otlp-collector.js';
import { json, startServer, startTokenEndpoint, type TestServer } from './support/servers.js';

const CLIENT_SECRET = 'tracing-client-secret-0123456789';
const WRONG_SECRET = 'tracing-wrong-secret-9876543210';
const FLAKY_SECRET = 'tracing-flaky-secret-abcdef';
const GATEWAY_KEY = 'tracing-gateway-key-5551212';
const QUERY_VALUE = 'QueryValueThatMustNotLeak';

/** The spans of the trace whose SERVER span carries request id `requestId`, once `count` have arrived. */
async function traceOf(collector: Collector, requestId: string, count: number): Promise<{ server: CollectedSpan; spans: CollectedSpan[] }> {
  const find = (spans: CollectedSpan[]) =>
    spans.find((s) => s.kind === SPAN_KIND_SERVER && s.attributes['tokengate.request_id'] === requestId);
  const spans = await collector.waitFor((all) => {
    const server = find(all);
    return server !== undefined && all.filter((s) => s.traceId === server.traceId).length >= count;
  });
  const server = find(spans)!;
  return { server, spans: spans.filter((s) => s.traceId === server.traceId) };
}

function childrenOf(parent: CollectedSpan, spans: CollectedSpan[]): CollectedSpan[] {
  return spans.filter((s) => s.parentSpanId === parent.spanId);
}

/** A W3C traceparent with random ids (RFC-style lowercase hex), sampled or not. */
function callerTraceparent(sampled: boolean): { traceId: string; parentId: string; header: string } {
  const hex = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');
  const traceId = hex(16);
  const parentId = hex(8);
  return { traceId, parentId, header: `00-${traceId}-${parentId}-${sampled ? '01' : '00'}` };
}

describe('tracing: spans exported over OTLP/HTTP protobuf (enabled by OTEL_EXPORTER_OTLP_ENDPOINT)', () => {
  let oidc: OidcServer;
  let flakyEndpoint: TestServer;
  let gatedEndpoint: TestServer;
  const gate = new EventEmitter();
  let upstream: TestServer;
  let collector: Collector;
  let gw: TestGateway;
  const answered401 = new Set<string>();

  before(async () => {
    oidc = await startOidcProvider([
      { client_id: 'tracing-client', client_secret: CLIENT_SECRET, token_endpoint_auth_method: 'client_secret_basic' },
    ]);
    // The first token request fails with a 503 (a real server does not do that on cue), the next succeed.
    flakyEndpoint = await startTokenEndpoint((_req, res, _body, index) =>
      index === 0
        ? json(res, 503, { error: 'temporarily_unavailable' })
        : json(res, 200, { access_token: `flaky-token-${index}`, token_type: 'Bearer', expires_in: 300 }),
    );
    // Holds each token request until the test opens the gate (to make two callers share one request).
    gatedEndpoint = await startTokenEndpoint((_req, res) => {
      gate.emit('request');
      gate.once('open', () => json(res, 200, { access_token: 'gated-token-1', token_type: 'Bearer', expires_in: 300 }));
    });
    // /revoked/... refuses the first token it sees with RFC 6750 invalid_token; /hang never answers.
    upstream = await startServer((req, res) => {
      const path = req.url ?? '';
      if (path.startsWith('/api/hang')) return;
      if (path.startsWith('/api/revoked') && !answered401.has(path)) {
        answered401.add(path);
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
        return res.end();
      }
      json(res, 200, { url: path });
    });
    collector = await startCollector();
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  good: { env: TG_TRACING_GOOD }
  wrong: { env: TG_TRACING_WRONG }
  flaky: { env: TG_TRACING_FLAKY }
  gateway-key: { env: TG_TRACING_KEY }
access:
  apiKeys: [ { secret: gateway-key } ]
connections:
  good:
    clientId: tracing-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: good }
  wrong:
    clientId: tracing-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: wrong }
  flaky:
    clientId: flaky-client
    tokenUrl: ${flakyEndpoint.url}/token
    clientSecret: { secret: flaky }
  shared:
    clientId: shared-client
    tokenUrl: ${gatedEndpoint.url}/token
    clientSecret: { secret: flaky }
routes:
  - name: orders
    match: { pathPrefix: /orders }
    upstream: ${upstream.url}/api
    stripPrefix: true
    auth: { connection: good }
  - name: rejected
    match: { pathPrefix: /rejected }
    upstream: ${upstream.url}/api
    auth: { connection: wrong }
  - name: flaky
    match: { pathPrefix: /flaky }
    upstream: ${upstream.url}/api
    stripPrefix: true
    auth: { connection: flaky }
  - name: shared
    match: { pathPrefix: /shared }
    upstream: ${upstream.url}/api
    stripPrefix: true
    auth: { connection: shared }
  - name: slow
    match: { pathPrefix: /hang }
    upstream: ${upstream.url}/api
    auth: { type: none }
    timeouts: { responseMs: 300 }
`,
      {
        env: {
          ...process.env,
          TG_TRACING_GOOD: CLIENT_SECRET,
          TG_TRACING_WRONG: WRONG_SECRET,
          TG_TRACING_FLAKY: FLAKY_SECRET,
          TG_TRACING_KEY: GATEWAY_KEY,
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          OTEL_SERVICE_NAME: 'tokengate-under-test',
        },
      },
    );
  });

  after(async () => {
    await gw.stop();
    await Promise.all([collector.close(), upstream.close(), flakyEndpoint.close(), gatedEndpoint.close(), oidc.close()]);
  });

  const send = (path: string, requestId: string, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}${path}`, { headers: { 'x-gateway-key': GATEWAY_KEY, 'x-request-id': requestId, ...headers } });

  it('a cache miss is one trace: the SERVER span with the token fetch and the upstream call as CLIENT children', async () => {
    const response = await send(`/orders/items?id=${QUERY_VALUE}&flag&sig=${QUERY_VALUE}`, 'miss-1');
    assert.equal(response.status, 200);
    const { server, spans } = await traceOf(collector, 'miss-1', 3);
    assert.equal(server.name, 'GET orders');
    assert.equal(server.parentSpanId, undefined);
    assert.equal(server.statusCode, STATUS_UNSET);
    assert.equal(server.encoding, 'protobuf');
    assert.equal(server.resource['service.name'], 'tokengate-under-test');
    assert.deepEqual(
      {
        method: server.attributes['http.request.method'],
        path: server.attributes['url.path'],
        query: server.attributes['url.query'],
        scheme: server.attributes['url.scheme'],
        status: server.attributes['http.response.status_code'],
        route: server.attributes['http.route'],
        routeName: server.attributes['tokengate.route'],
        cache: server.attributes['tokengate.token.cache'],
        serverAddress: server.attributes['server.address'],
      },
      {
        method: 'GET',
        path: '/orders/items',
        query: 'id=REDACTED&flag&sig=REDACTED',
        scheme: 'http',
        status: 200,
        route: '/orders',
        routeName: 'orders',
        cache: 'miss',
        serverAddress: '127.0.0.1',
      },
    );
    const children = childrenOf(server, spans);
    assert.equal(children.length, 2);
    const token = children.find((s) => s.attributes['tokengate.connection'] !== undefined)!;
    const call = children.find((s) => s !== token)!;
    assert.equal(token.kind, SPAN_KIND_CLIENT);
    assert.equal(token.name, 'POST');
    assert.equal(token.attributes['tokengate.connection'], 'good');
    assert.equal(token.attributes['tokengate.token.outcome'], 'success');
    assert.equal(token.attributes['url.full'], oidc.tokenUrl);
    assert.equal(token.attributes['http.request.resend_count'], undefined);
    assert.equal(token.statusCode, STATUS_UNSET);
    assert.equal(call.kind, SPAN_KIND_CLIENT);
    assert.equal(call.name, 'GET');
    assert.equal(call.attributes['url.full'], `${upstream.url}/api/items?id=REDACTED&flag&sig=REDACTED`);
    assert.equal(call.attributes['http.response.status_code'], 200);
    assert.equal(call.attributes['server.port'], upstream.port);
    assert.equal(call.statusCode, STATUS_UNSET);
    // The upstream's parent is the CLIENT span of the attempt that reached it.
    const seen = upstream.received.at(-1)!;
    assert.equal(seen.headers.traceparent, `00-${server.traceId}-${call.spanId}-01`);
  });

  it('a cache hit is a trace without a token fetch, marked tokengate.token.cache=hit', async () => {
    assert.equal((await send('/orders/again', 'hit-1')).status, 200);
    const { server, spans } = await traceOf(collector, 'hit-1', 2);
    assert.equal(server.attributes['tokengate.token.cache'], 'hit');
    const children = childrenOf(server, spans);
    assert.deepEqual(
      children.map((s) => [s.kind, s.name, s.attributes['tokengate.connection']]),
      [[SPAN_KIND_CLIENT, 'GET', undefined]],
    );
  });

  it('a 401 replay is a second upstream CLIENT span with http.request.resend_count, after a new token fetch', async () => {
    assert.equal((await send('/orders/revoked/1', 'replay-1')).status, 200);
    const { server, spans } = await traceOf(collector, 'replay-1', 4);
    assert.equal(server.statusCode, STATUS_UNSET);
    const calls = childrenOf(server, spans).filter((s) => s.attributes['tokengate.connection'] === undefined);
    const tokens = childrenOf(server, spans).filter((s) => s.attributes['tokengate.connection'] === 'good');
    assert.equal(tokens.length, 1);
    assert.equal(calls.length, 2);
    const [refused, replayed] = calls.sort(
      (a, b) => Number(a.attributes['http.request.resend_count'] ?? 0) - Number(b.attributes['http.request.resend_count'] ?? 0),
    );
    assert.equal(refused!.attributes['http.response.status_code'], 401);
    assert.equal(refused!.attributes['error.type'], '401');
    assert.equal(refused!.statusCode, STATUS_ERROR);
    assert.equal(refused!.attributes['http.request.resend_count'], undefined);
    assert.equal(replayed!.attributes['http.response.status_code'], 200);
    assert.equal(replayed!.attributes['http.request.resend_count'], 1);
    assert.equal(replayed!.statusCode, STATUS_UNSET);
    // Each attempt reached the upstream with its own span as the parent.
    const parents = upstream.received.filter((r) => r.url === '/api/revoked/1').map((r) => r.headers.traceparent);
    assert.deepEqual(parents, [`00-${server.traceId}-${refused!.spanId}-01`, `00-${server.traceId}-${replayed!.spanId}-01`]);
  });

  it('a token failure marks the token CLIENT span with the reason and the SERVER span (502) as an error', async () => {
    const response = await send('/rejected/x', 'rejected-1');
    assert.equal(response.status, 502);
    const { server, spans } = await traceOf(collector, 'rejected-1', 2);
    assert.equal(server.statusCode, STATUS_ERROR);
    assert.equal(server.attributes['error.type'], 'TOKEN_REJECTED');
    assert.equal(server.attributes['http.response.status_code'], 502);
    const [token, ...others] = childrenOf(server, spans);
    assert.deepEqual(others, []);
    assert.equal(token!.attributes['tokengate.connection'], 'wrong');
    assert.equal(token!.attributes['tokengate.token.outcome'], 'failure');
    assert.equal(token!.attributes['tokengate.token.failure_reason'], 'invalid_client');
    assert.equal(token!.attributes['error.type'], 'invalid_client');
    assert.equal(token!.attributes['http.response.status_code'], 401);
    assert.equal(token!.statusCode, STATUS_ERROR);
  });

  it('token-endpoint retries are one CLIENT span per attempt, the retry with http.request.resend_count', async () => {
    assert.equal((await send('/flaky/x', 'flaky-1')).status, 200);
    const { server, spans } = await traceOf(collector, 'flaky-1', 4);
    const attempts = childrenOf(server, spans)
      .filter((s) => s.attributes['tokengate.connection'] === 'flaky')
      .sort((a, b) => Number(a.attributes['http.request.resend_count'] ?? 0) - Number(b.attributes['http.request.resend_count'] ?? 0));
    assert.equal(attempts.length, 2);
    assert.equal(attempts[0]!.attributes['tokengate.token.outcome'], 'failure');
    assert.equal(attempts[0]!.attributes['tokengate.token.failure_reason'], 'http_status');
    assert.equal(attempts[0]!.attributes['http.response.status_code'], 503);
    assert.equal(attempts[0]!.statusCode, STATUS_ERROR);
    assert.equal(attempts[1]!.attributes['tokengate.token.outcome'], 'success');
    assert.equal(attempts[1]!.attributes['http.request.resend_count'], 1);
    assert.equal(attempts[1]!.attributes['url.full'], `${flakyEndpoint.url}/token`);
  });

  it('callers sharing one token request: its span belongs to the trace of the request that started it', async () => {
    const requested = once(gate, 'request');
    const first = send('/shared/a', 'shared-first');
    await requested;
    const second = send('/shared/b', 'shared-second');
    // The second caller is waiting on the same token request once its cache miss is counted.
    while ((await metricValue(gw.admin, 'tokengate_token_cache_lookups_total', { connection: 'shared', result: 'miss' })) < 2);
    gate.emit('open');
    assert.deepEqual([(await first).status, (await second).status], [200, 200]);
    const a = await traceOf(collector, 'shared-first', 3);
    const b = await traceOf(collector, 'shared-second', 2);
    assert.equal(b.server.attributes['tokengate.token.cache'], 'miss');
    assert.deepEqual(
      childrenOf(a.server, a.spans)
        .map((s) => s.attributes['tokengate.connection'] ?? s.name)
        .sort(),
      ['GET', 'shared'],
    );
    assert.deepEqual(
      childrenOf(b.server, b.spans).map((s) => s.attributes['tokengate.connection'] ?? s.name),
      ['GET'],
    );
    assert.equal(gatedEndpoint.received.length, 1);
  });

  it('an upstream time-out is a CLIENT span with error.type=timeout under a SERVER span answered 504', async () => {
    const response = await send('/hang/x', 'timeout-1');
    assert.equal(response.status, 504);
    const { server, spans } = await traceOf(collector, 'timeout-1', 2);
    assert.equal(server.name, 'GET slow');
    assert.equal(server.statusCode, STATUS_ERROR);
    assert.equal(server.attributes['error.type'], 'UPSTREAM_TIMEOUT');
    assert.equal(server.attributes['tokengate.token.cache'], undefined);
    const [call] = childrenOf(server, spans);
    assert.equal(call!.attributes['error.type'], 'timeout');
    assert.equal(call!.attributes['http.response.status_code'], undefined);
    assert.equal(call!.statusCode, STATUS_ERROR);
  });

  it('an unmatched request is a SERVER span named by its method alone, tokengate.route=unmatched, not an error (404)', async () => {
    assert.equal((await send('/nowhere', 'unmatched-1')).status, 404);
    const { server } = await traceOf(collector, 'unmatched-1', 1);
    assert.equal(server.name, 'GET');
    assert.equal(server.attributes['tokengate.route'], 'unmatched');
    assert.equal(server.attributes['http.response.status_code'], 404);
    assert.equal(server.statusCode, STATUS_UNSET);
  });

  it("continues a caller's sampled traceparent: same trace id, the caller's span as the parent", async () => {
    const caller = callerTraceparent(true);
    assert.equal((await send('/orders/continued', 'continued-1', { traceparent: caller.header, tracestate: 'vendor=abc' })).status, 200);
    const { server, spans } = await traceOf(collector, 'continued-1', 2);
    assert.equal(server.traceId, caller.traceId);
    assert.equal(server.parentSpanId, caller.parentId);
    const [call] = childrenOf(server, spans);
    const seen = upstream.received.at(-1)!;
    assert.equal(seen.headers.traceparent, `00-${caller.traceId}-${call!.spanId}-01`);
    assert.equal(seen.headers.tracestate, 'vendor=abc');
  });

  it("does not export a caller's unsampled trace, yet hands the upstream its trace id, unsampled", async () => {
    const caller = callerTraceparent(false);
    assert.equal((await send('/orders/unsampled', 'unsampled-1', { traceparent: caller.header })).status, 200);
    const seen = upstream.received.at(-1)!;
    assert.match(String(seen.headers.traceparent), new RegExp(`^00-${caller.traceId}-[0-9a-f]{16}-00$`));
    assert.notEqual(seen.headers.traceparent, caller.header);
    // Spans are exported in the order they end: once a later request's trace is in, the unsampled one would be too.
    assert.equal((await send('/orders/marker', 'after-unsampled-1')).status, 200);
    const spans = (await traceOf(collector, 'after-unsampled-1', 2)).spans;
    assert.ok(spans.length > 0);
    assert.deepEqual(
      collector.spans.filter((s) => s.traceId === caller.traceId || s.attributes['tokengate.request_id'] === 'unsampled-1'),
      [],
    );
  });

  it('no token, secret, access key or query value appears anywhere in the exported bytes', async () => {
    await traceOf(collector, 'after-unsampled-1', 2);
    const exported = Buffer.concat(collector.bodies);
    const tokens = upstream.received.map((r) => r.headers.authorization?.replace(/^Bearer /, '')).filter((t) => t !== undefined);
    assert.ok(tokens.length >= 5);
    for (const secret of [CLIENT_SECRET, WRONG_SECRET, FLAKY_SECRET, GATEWAY_KEY, QUERY_VALUE, ...new Set(tokens)]) {
      assert.equal(exported.includes(secret), false, `${secret.slice(0, 12)}... is in the exported spans`);
    }
    // Nor the Basic credentials the token requests carried.
    assert.equal(exported.includes(Buffer.from(`tracing-client:${CLIENT_SECRET}`).toString('base64')), false);
  });
});

describe('tracing: OTLP/HTTP JSON chosen in the YAML', () => {
  let upstream: TestServer;
  let collector: Collector;
  let gw: TestGateway;

  before(async () => {
    upstream = await startServer((_req, res) => json(res, 200, {}));
    collector = await startCollector();
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
tracing:
  enabled: true
  endpoint: ${collector.url}
  protocol: http/json
  serviceName: tokengate-json
routes:
  - name: open
    match: { pathPrefix: /open }
    upstream: ${upstream.url}
    auth: { type: none }
`,
      // The YAML wins over the environment: these must change nothing.
      { env: { ...process.env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9/v1/traces', OTEL_SERVICE_NAME: 'ignored' } },
    );
  });

  after(async () => {
    await gw.stop();
    await Promise.all([collector.close(), upstream.close()]);
  });

  it('exports the trace as OTLP JSON to the YAML endpoint with the YAML service name', async () => {
    const response = await fetch(`${gw.url}/open/x?token=${QUERY_VALUE}`, { headers: { 'x-request-id': 'json-1' } });
    assert.equal(response.status, 200);
    const { server, spans } = await traceOf(collector, 'json-1', 2);
    assert.equal(server.encoding, 'json');
    assert.equal(server.resource['service.name'], 'tokengate-json');
    assert.equal(server.name, 'GET open');
    assert.equal(server.attributes['url.query'], 'token=REDACTED');
    const [call] = childrenOf(server, spans);
    assert.equal(call!.attributes['url.full'], `${upstream.url}/open/x?token=REDACTED`);
    assert.equal(upstream.received[0]!.headers.traceparent, `00-${server.traceId}-${call!.spanId}-01`);
    assert.equal(Buffer.concat(collector.bodies).includes(QUERY_VALUE), false);
  });
});
