/**
 * /metrics after one request of every kind (success via oidc-provider, invalid_client, token
 * endpoint down, upstream down, unmatched, a malformed OAuth error, a caller without the API key)
 * and a refused reload: the exact
 * samples, promtool's lint of the exposition, and promtool's checks of the shipped rules and config.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../src/observability/metrics.js';
import { buildConfigOnly } from '../src/runtime/build.js';
import { metricValue } from './support/faults.js';
import { startGateway, writeConfig, type TestGateway } from './support/gateway.js';
import { programPath, requireProgram } from './support/programs.js';
import { CONNECTIONS, driveTraffic, parseExposition, ROUTES, sampleKey, startScenario, type Scenario } from './support/observability.js';
import { startServer, startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';
import { waitFor } from './support/wait.js';

const TOKEN_FAILURE_REASONS = [
  'invalid_client',
  'invalid_scope',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_request',
  'oauth_error',
  'http_status',
  'timeout',
  'network',
  'invalid_response',
  'circuit_open',
  'credentials_unavailable',
];
const SPEC_COUNTERS = [
  'tokengate_token_requests_total',
  'tokengate_token_failures_total',
  'tokengate_token_cache_lookups_total',
  'tokengate_requests_total',
  'tokengate_auth_failures_total',
  'tokengate_upstream_errors_total',
  'tokengate_config_reloads_total',
  'tokengate_access_denied_total',
  'tokengate_cache_errors_total',
];

function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const result = spawnSync(programPath('promtool'), args, { input, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('metrics after traffic of every kind', () => {
  let scenario: Scenario;
  let exposition: string;
  let samples: Map<string, number>;

  before(async () => {
    scenario = await startScenario();
    await driveTraffic(scenario);
    const response = await fetch(`${scenario.gw.admin}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    exposition = await response.text();
    samples = parseExposition(exposition);
  });

  after(() => scenario.stop());

  it('exports exactly the expected counter samples, the failure series of every connection and route included at 0', () => {
    const expected = new Map<string, number>();
    const set = (name: string, labels: Record<string, string>, value: number) => expected.set(sampleKey(name, labels), value);
    for (const connection of CONNECTIONS) {
      for (const outcome of ['success', 'failure']) set('tokengate_token_requests_total', { connection, outcome }, 0);
      for (const reason of TOKEN_FAILURE_REASONS) set('tokengate_token_failures_total', { connection, reason }, 0);
      for (const result of ['hit', 'miss']) set('tokengate_token_cache_lookups_total', { connection, result }, 0);
    }
    for (const route of ROUTES)
      for (const reason of ['unavailable', 'timeout', 'reset']) set('tokengate_upstream_errors_total', { route, reason }, 0);
    for (const reason of ['missing_key', 'wrong_key', 'address']) set('tokengate_access_denied_total', { route: 'guarded', reason }, 0);

    set('tokengate_token_requests_total', { connection: 'good', outcome: 'success' }, 1);
    set('tokengate_token_requests_total', { connection: 'wrong-secret', outcome: 'failure' }, 1);
    set('tokengate_token_requests_total', { connection: 'token-down', outcome: 'failure' }, 2); // retry.maxAttempts: 2
    set('tokengate_token_requests_total', { connection: 'malformed', outcome: 'failure' }, 1);
    set('tokengate_token_failures_total', { connection: 'wrong-secret', reason: 'invalid_client' }, 1);
    set('tokengate_token_failures_total', { connection: 'token-down', reason: 'network' }, 2);
    set('tokengate_token_failures_total', { connection: 'malformed', reason: 'invalid_request' }, 1);
    set('tokengate_token_cache_lookups_total', { connection: 'good', result: 'miss' }, 1);
    set('tokengate_token_cache_lookups_total', { connection: 'good', result: 'hit' }, 3); // two more on orders, one on upstream-down
    for (const connection of ['wrong-secret', 'token-down', 'malformed'])
      set('tokengate_token_cache_lookups_total', { connection, result: 'miss' }, 1);

    set('tokengate_requests_total', { route: 'orders', method: 'GET', code: '200' }, 3);
    set('tokengate_requests_total', { route: 'bad-client', method: 'GET', code: '502' }, 1);
    set('tokengate_requests_total', { route: 'token-down', method: 'GET', code: '503' }, 1);
    set('tokengate_requests_total', { route: 'upstream-down', method: 'GET', code: '502' }, 1);
    set('tokengate_requests_total', { route: 'unmatched', method: 'GET', code: '404' }, 1);
    set('tokengate_requests_total', { route: 'malformed', method: 'GET', code: '502' }, 1);
    set('tokengate_requests_total', { route: 'guarded', method: 'GET', code: '401' }, 1);
    set('tokengate_access_denied_total', { route: 'guarded', reason: 'missing_key' }, 1);
    set('tokengate_auth_failures_total', { route: 'bad-client', connection: 'wrong-secret', reason: 'invalid_client' }, 1);
    set('tokengate_auth_failures_total', { route: 'token-down', connection: 'token-down', reason: 'network' }, 1);
    set('tokengate_auth_failures_total', { route: 'malformed', connection: 'malformed', reason: 'invalid_request' }, 1);
    set('tokengate_upstream_errors_total', { route: 'upstream-down', reason: 'unavailable' }, 1);
    set('tokengate_config_reloads_total', { outcome: 'success' }, 0);
    set('tokengate_config_reloads_total', { outcome: 'failure' }, 1);

    const actual = new Map([...samples].filter(([key]) => SPEC_COUNTERS.includes(key.replace(/\{.*$/, ''))));
    assert.deepEqual(Object.fromEntries([...actual].sort()), Object.fromEntries([...expected].sort()));
  });

  it('counts every request and token request in the duration histograms', () => {
    const counts: Record<string, number> = {
      orders: 3,
      'bad-client': 1,
      'token-down': 1,
      'upstream-down': 1,
      unmatched: 1,
      malformed: 1,
      guarded: 1,
    };
    for (const [route, count] of Object.entries(counts)) {
      assert.equal(samples.get(sampleKey('tokengate_request_duration_seconds_count', { route })), count, route);
      assert.equal(samples.get(sampleKey('tokengate_request_duration_seconds_bucket', { route, le: '+Inf' })), count, route);
      assert.ok(samples.get(sampleKey('tokengate_request_duration_seconds_sum', { route }))! > 0, route);
    }
    const tokenCounts: Record<string, number> = { good: 1, 'wrong-secret': 1, 'token-down': 2, malformed: 1 };
    for (const [connection, count] of Object.entries(tokenCounts)) {
      assert.equal(samples.get(sampleKey('tokengate_token_request_duration_seconds_count', { connection })), count, connection);
    }
  });

  it('shows nothing in flight once the traffic has been answered: both gauges at 0 for every route and connection', () => {
    const inFlight = (name: string) => [...samples].filter(([key]) => key.startsWith(`${name}{`)).sort();
    assert.deepEqual(
      inFlight('tokengate_upstream_requests_in_flight'),
      [...ROUTES].map((route) => [sampleKey('tokengate_upstream_requests_in_flight', { route }), 0]).sort(),
    );
    assert.deepEqual(
      inFlight('tokengate_token_fetches_in_flight'),
      [...CONNECTIONS].map((connection) => [sampleKey('tokengate_token_fetches_in_flight', { connection }), 0]).sort(),
    );
  });

  it('reports the seconds to expiry of the cached token, and nothing for connections without one', () => {
    const expiry = samples.get(sampleKey('tokengate_token_expires_in_seconds', { connection: 'good' }));
    assert.ok(expiry !== undefined && expiry > 500 && expiry <= 600, `expires in ${expiry}`); // oidc-provider ttl 600 s
    const others = [...samples.keys()].filter((key) => key.startsWith('tokengate_token_expires_in_seconds{') && !key.includes('"good"'));
    assert.deepEqual(others, []);
  });

  it('exports the default process metrics under the tokengate_ prefix', () => {
    for (const name of [
      'tokengate_process_cpu_seconds_total',
      'tokengate_process_resident_memory_bytes',
      'tokengate_nodejs_eventloop_lag_seconds',
    ]) {
      assert.ok(samples.has(name), name);
    }
    assert.ok(
      [...samples.keys()].every((key) => key.startsWith('tokengate_')),
      'every metric carries the prefix',
    );
  });

  it('uses only bounded label values: no path, query, client id or credential', () => {
    for (const text of ['/orders', 'nowhere', 'not-a-label', 'good-client', 'malformed-client', ...scenario.credentials()]) {
      assert.ok(!exposition.includes(text), `the exposition contains ${text.slice(0, 12)}`);
    }
  });

  // Debian's prometheus package has promtool; the exact samples above need nothing installed.
  const promtoolInstalled = requireProgram('promtool', 'prometheus');

  it('passes promtool check metrics', promtoolInstalled, () => {
    const { status, output } = promtool(['check', 'metrics'], exposition);
    assert.equal(status, 0, output);
  });

  it('ships alert rules that pass promtool check rules and their unit tests', promtoolInstalled, () => {
    const checked = promtool(['check', 'rules', 'deploy/prometheus/alerts.yml']);
    assert.equal(checked.status, 0, checked.output);
    assert.match(checked.output, /SUCCESS: 5 rules found/);
    const tested = promtool(['test', 'rules', 'deploy/prometheus/alerts.test.yml']);
    assert.equal(tested.status, 0, tested.output);
  });

  it('ships a scrape config example that passes promtool check config', promtoolInstalled, () => {
    const { status, output } = promtool(['check', 'config', 'deploy/prometheus/prometheus.yml']);
    assert.equal(status, 0, output);
  });
});

describe('series declared at 0', () => {
  it('exports the shared cache error counters with cache.store: redis, and access denials for routes under a top-level policy', async () => {
    const { configFile } = writeConfig(`
secrets:
  cache-key: { value: "${'ab'.repeat(32)}" }
  team: { value: team-key-0123456789 }
cache: { store: redis, encryptionKey: { secret: cache-key } }
access: { apiKeys: [ { secret: team } ] }
routes:
  - name: open
    match: { pathPrefix: /open }
    upstream: http://127.0.0.1:1
    auth: { type: none }
`);
    const metrics = new Metrics();
    metrics.declareSeries(await buildConfigOnly(configFile));
    const samples = parseExposition(await metrics.registry.metrics());
    const declared = (name: string) => [...samples].filter(([key]) => key.startsWith(`${name}{`)).map(([key, value]) => `${key} ${value}`);
    assert.deepEqual(
      declared('tokengate_cache_errors_total'),
      ['connect', 'subscribe', 'read', 'lease', 'write', 'invalidate', 'decode'].map(
        (operation) => `tokengate_cache_errors_total{operation="${operation}"} 0`,
      ),
    );
    assert.deepEqual(
      declared('tokengate_access_denied_total'),
      ['missing_key', 'wrong_key', 'address'].map((reason) => `tokengate_access_denied_total{reason="${reason}",route="open"} 0`),
    );
  });
});

describe('in-flight gauges', () => {
  /** Requests the peer holds unanswered, released by the test. */
  let held: Array<() => void>;
  let upstream: TestServer;
  let tokens: TestServer;
  let gw: TestGateway;
  const value = async (name: string, labels: Record<string, string>) => metricValue(gw.admin, name, labels);

  before(async () => {
    held = [];
    const hold = (answer: () => void) => held.push(answer);
    upstream = await startServer((_req, res) => hold(() => res.end('late')));
    tokens = await startTokenEndpoint((req, res, body, index) => hold(() => tokenIssuer()(req, res, body, index)));
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: token-endpoint-secret } }
connections:
  slow-tokens: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - { name: slow, match: { pathPrefix: /slow }, upstream: ${upstream.url}, auth: { type: none }, timeouts: { responseMs: 30000 } }
  - { name: token, match: { pathPrefix: /token }, upstream: ${upstream.url}, auth: { connection: slow-tokens } }
`);
  });

  after(async () => {
    for (const answer of held.splice(0)) answer();
    await gw.stop();
    await upstream.close();
    await tokens.close();
  });

  it('tokengate_upstream_requests_in_flight counts a request until its answer ends, also after its caller has gone', async () => {
    const route = { route: 'slow' };
    assert.equal(await value('tokengate_upstream_requests_in_flight', route), 0);
    const kept = fetch(`${gw.url}/slow/kept`).then((r) => r.text());
    const abandoned = new AbortController();
    fetch(`${gw.url}/slow/abandoned`, { signal: abandoned.signal }).catch(() => undefined);
    await waitFor(() => held.length === 2, 'the upstream to hold both requests');
    assert.equal(await value('tokengate_upstream_requests_in_flight', route), 2);
    abandoned.abort();
    // The caller who left takes its request with it: the gateway aborts it.
    await waitFor(async () => (await value('tokengate_upstream_requests_in_flight', route)) === 1, 'the abandoned request to end');
    for (const answer of held.splice(0)) answer();
    assert.equal(await kept, 'late');
    await waitFor(async () => (await value('tokengate_upstream_requests_in_flight', route)) === 0, 'the answered request to end');
  });

  it('tokengate_token_fetches_in_flight counts one fetch for every caller waiting on the same token, until it settles', async () => {
    const connection = { connection: 'slow-tokens' };
    assert.equal(await value('tokengate_token_fetches_in_flight', connection), 0);
    const callers = [1, 2, 3].map((i) => fetch(`${gw.url}/token/${i}`));
    await waitFor(() => held.length === 1, 'the token endpoint to hold the request');
    assert.equal(await value('tokengate_token_fetches_in_flight', connection), 1);
    held.splice(0)[0]!();
    // The token arrives; the three requests then wait at the upstream.
    await waitFor(() => held.length === 3, 'the upstream to hold the three requests');
    assert.equal(await value('tokengate_token_fetches_in_flight', connection), 0);
    assert.equal(await value('tokengate_upstream_requests_in_flight', { route: 'token' }), 3);
    for (const answer of held.splice(0)) answer();
    for (const response of await Promise.all(callers)) assert.equal(response.status, 200);
  });
});

describe('counts kept as plain numbers on the request path', () => {
  it('tokengate_requests_total and the cache lookups show the running total at every scrape, never a scrape twice or an increment alone', async () => {
    const metrics = new Metrics();
    const requests = metrics.requestCounts('orders');
    const hits = metrics.cacheLookupCount('crm', 'hit');
    const read = async () => {
      const samples = parseExposition(await metrics.registry.metrics());
      return [
        samples.get(sampleKey('tokengate_requests_total', { route: 'orders', method: 'GET', code: '200' })),
        samples.get(sampleKey('tokengate_requests_total', { route: 'orders', method: 'POST', code: '201' })),
        samples.get(sampleKey('tokengate_token_cache_lookups_total', { connection: 'crm', result: 'hit' })),
      ];
    };
    requests.count('GET', 200);
    requests.count('GET', 200);
    hits.inc();
    assert.deepEqual(await read(), [2, undefined, 1]);
    assert.deepEqual(await read(), [2, undefined, 1], 'a second scrape adds nothing');
    requests.count('GET', 200);
    requests.count('POST', 201);
    hits.inc();
    hits.inc();
    assert.deepEqual(await read(), [3, 1, 3]);
    // The same route name after a reload gets the same counts: a series never restarts at 0.
    metrics.requestCounts('orders').count('GET', 200);
    assert.deepEqual(await read(), [4, 1, 3]);
  });
});
