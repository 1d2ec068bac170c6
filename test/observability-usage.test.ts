/**
 * The usage data (GET /usage) and the log lines after one request of every kind: per-connection
 * counts, the recent-failures ring buffer, the failure and access log lines, and no credential in
 * any of them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DESCRIPTION_MAX, RECENT_FAILURES, Usage } from '../src/observability/usage.js';
import { TokenError } from '../src/errors/gateway.js';
import { driveTraffic, REQUEST_IDS, startScenario, type Scenario } from './support/observability.js';

interface UsageDoc {
  connections: Record<string, unknown>[];
  recentFailures: Record<string, unknown>[];
}

const FAILURE_KEYS = [
  'code',
  'connection',
  'detail',
  'error_description',
  'httpStatus',
  'oauthError',
  'reason',
  'requestId',
  'route',
  'time',
];
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

describe('usage data and logs after traffic of every kind', () => {
  let scenario: Scenario;
  let usageText: string;
  let usage: UsageDoc;

  before(async () => {
    scenario = await startScenario();
    await driveTraffic(scenario);
    const response = await fetch(`${scenario.gw.admin}/usage`);
    assert.equal(response.status, 200);
    usageText = await response.text();
    usage = JSON.parse(usageText) as UsageDoc;
  });

  after(() => scenario.stop());

  const connection = (key: string) => usage.connections.find((c) => c.connection === key)!;

  it('counts token requests, successes, failures by reason and cache lookups per connection', () => {
    const good = connection('good');
    assert.equal(good.displayName, 'Good Partner');
    assert.equal(good.tokenRequests, 1);
    assert.equal(good.successes, 1);
    assert.equal(good.failures, 0);
    assert.deepEqual(good.failuresByReason, {});
    assert.equal(good.cacheHits, 3);
    assert.equal(good.cacheMisses, 1);
    assert.equal(good.cacheHitRatio, 0.75);
    assert.equal(connection('token-down').displayName, 'token-down', 'the key when no displayName is set');
    assert.deepEqual(connection('token-down').failuresByReason, { network: 2 });
    assert.equal(connection('token-down').tokenRequests, 2);
    assert.deepEqual(connection('wrong-secret').failuresByReason, { invalid_client: 1 });
    assert.deepEqual(connection('malformed').failuresByReason, { invalid_request: 1 });
    assert.equal(connection('malformed').cacheHitRatio, 0);
  });

  it('shows the current token expiry, never the token', () => {
    const good = connection('good');
    assert.ok(typeof good.tokenExpiresInSeconds === 'number' && good.tokenExpiresInSeconds > 500 && good.tokenExpiresInSeconds <= 600);
    const expiresAt = Date.parse(good.tokenExpiresAt as string);
    assert.ok(Math.abs(expiresAt - (Date.now() + good.tokenExpiresInSeconds * 1000)) < 5_000);
    assert.equal(connection('wrong-secret').tokenExpiresInSeconds, null);
    assert.equal(connection('wrong-secret').tokenExpiresAt, null);
  });

  it('lists the recent failures newest first, each with time, route, reason, oauthError, description, status and request id', () => {
    const failures = usage.recentFailures;
    assert.deepEqual(
      failures.map((f) => [f.connection, f.route, f.reason, f.requestId]),
      [
        ['malformed', 'malformed', 'invalid_request', REQUEST_IDS.malformed],
        ['token-down', 'token-down', 'network', REQUEST_IDS.tokenDown],
        ['token-down', 'token-down', 'network', REQUEST_IDS.tokenDown],
        ['wrong-secret', 'bad-client', 'invalid_client', REQUEST_IDS.invalidClient],
      ],
    );
    for (const failure of failures) {
      assert.deepEqual(Object.keys(failure).sort(), FAILURE_KEYS);
      assert.ok(Math.abs(Date.parse(failure.time as string) - Date.now()) < 60_000);
    }
    const invalidClient = failures[3]!;
    assert.equal(invalidClient.code, 'TOKEN_REJECTED');
    assert.equal(invalidClient.oauthError, 'invalid_client');
    assert.equal(invalidClient.httpStatus, 401);
    assert.equal(typeof invalidClient.error_description, 'string', 'oidc-provider explains invalid_client');
    const down = failures[1]!;
    assert.equal(down.code, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.equal(down.oauthError, null);
    assert.equal(down.httpStatus, null, 'no HTTP answer when the endpoint is down');
    assert.equal(down.error_description, null);
    assert.match(down.detail as string, /ECONNREFUSED/);
  });

  it('strips control characters from error_description and caps its length', () => {
    const failure = usage.recentFailures[0]!;
    const description = failure.error_description as string;
    assert.equal(failure.httpStatus, 400);
    assert.ok(description.startsWith('scope X-Injected: yes'), description.slice(0, 40));
    assert.ok(!CONTROL.test(description), 'no control characters');
    assert.ok(description.length <= DESCRIPTION_MAX, `${description.length} characters`);
    assert.ok(!CONTROL.test(failure.detail as string));
  });

  it('narrows to one connection with ?connection=KEY, and answers 404 for an unknown one and 400 for two', async () => {
    const one = (await (await fetch(`${scenario.gw.admin}/usage?connection=token-down`)).json()) as UsageDoc;
    assert.deepEqual(
      one.connections.map((c) => c.connection),
      ['token-down'],
    );
    assert.deepEqual(
      one.recentFailures.map((f) => f.connection),
      ['token-down', 'token-down'],
    );
    const unknown = await fetch(`${scenario.gw.admin}/usage?connection=nope`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const notFound = (await unknown.json()) as { code: string; detail: string };
    assert.equal(notFound.code, 'NOT_FOUND');
    assert.match(notFound.detail, /unknown connection nope/);
    const two = await fetch(`${scenario.gw.admin}/usage?connection=good&connection=malformed`);
    assert.equal(two.status, 400);
    assert.equal(((await two.json()) as { code: string }).code, 'BAD_REQUEST');
  });

  it('answers /healthz and /readyz while serving', async () => {
    const health = await fetch(`${scenario.gw.admin}/healthz`);
    assert.deepEqual([health.status, await health.json()], [200, { status: 'ok' }]);
    const ready = await fetch(`${scenario.gw.admin}/readyz`);
    assert.deepEqual([ready.status, await ready.json()], [200, { status: 'ready' }]);
  });

  it('logs one token_failure line per failure with the same fields as the usage record', () => {
    const lines = scenario.gw.logs.filter((l) => l.event === 'token_failure');
    assert.equal(lines.length, 4);
    const line = lines.find((l) => l.requestId === REQUEST_IDS.invalidClient)!;
    const record = usage.recentFailures[3]!;
    assert.equal(line.level, 40);
    for (const key of FAILURE_KEYS.filter((k) => k !== 'time')) assert.deepEqual(line[key], record[key], key);
    assert.equal(typeof line.time, 'number', "pino's time, not a second time key");
  });

  it('logs one access line per request with route, method, status, duration, request id and upstream status only', () => {
    const access = scenario.gw.logs.filter((l) => l.event === 'access');
    assert.equal(access.length, 9);
    const byId = (id: string) => access.filter((l) => l.requestId === id);
    const success = byId(REQUEST_IDS.success[0])[0]!;
    assert.deepEqual(Object.keys(success).sort(), [
      'durationMs',
      'event',
      'level',
      'method',
      'msg',
      'requestId',
      'route',
      'service',
      'status',
      'time',
      'upstreamStatus',
    ]);
    assert.equal(success.level, 30);
    assert.deepEqual([success.route, success.method, success.status, success.upstreamStatus], ['orders', 'GET', 200, 200]);
    assert.equal(typeof success.durationMs, 'number');
    const expectations: [string, string, number, number | undefined][] = [
      [REQUEST_IDS.invalidClient, 'bad-client', 502, undefined],
      [REQUEST_IDS.tokenDown, 'token-down', 503, undefined],
      [REQUEST_IDS.upstreamDown, 'upstream-down', 502, undefined],
      [REQUEST_IDS.unmatched, 'unmatched', 404, undefined],
      [REQUEST_IDS.malformed, 'malformed', 502, undefined],
      [REQUEST_IDS.denied, 'guarded', 401, undefined],
    ];
    for (const [id, route, status, upstreamStatus] of expectations) {
      const [line, ...more] = byId(id);
      assert.equal(more.length, 0, id);
      assert.deepEqual([line!.route, line!.status, line!.upstreamStatus], [route, status, upstreamStatus], id);
    }
  });

  it('puts no secret, token, assertion, path or query in /usage or the logs', () => {
    const logs = scenario.gw.logText();
    for (const text of [...scenario.credentials(), 'not-a-label']) {
      assert.ok(!usageText.includes(text), `/usage contains ${text.slice(0, 12)}`);
      assert.ok(!logs.includes(text), `the logs contain ${text.slice(0, 12)}`);
    }
  });
});

describe('the recent failures ring buffer', () => {
  it(`keeps the newest ${RECENT_FAILURES} failures, newest first`, () => {
    const usage = new Usage();
    usage.setConnections([{ key: 'c', displayName: 'C' }] as never);
    const total = RECENT_FAILURES + 7;
    for (let i = 0; i < total; i++) usage.recordFailure('c', new TokenError('TOKEN_ENDPOINT_TIMEOUT', 'timeout'), 'r', `req-${i}`);
    const { recentFailures } = usage.snapshot(new Map()) as { recentFailures: { requestId: string }[] };
    assert.equal(recentFailures.length, RECENT_FAILURES);
    assert.equal(recentFailures[0]!.requestId, `req-${total - 1}`);
    assert.equal(recentFailures.at(-1)!.requestId, `req-${total - RECENT_FAILURES}`);
  });
});
