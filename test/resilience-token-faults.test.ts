/**
 * Every way a token endpoint can fail, through the gateway: each answers with its error code of
 * docs/errors.md (or succeeds after a retry) inside the retry budget, with a bounded number of token requests.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { metricValue, timed } from './support/faults.js';
import { closedPort } from './support/observability.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { json, startEchoUpstream, startTokenEndpoint, type TestServer } from './support/servers.js';

const BUDGET_MS = 1_500;
const MAX_ATTEMPTS = 3;
/** Generous: the assertion is "bounded by the budget", not a benchmark. */
const MARGIN_MS = 1_000;
const JWT_SECRET = 'jwt-shared-secret-0123456789abcdef0123456789';

const token = (res: ServerResponse, extra: Record<string, unknown> = { expires_in: 300 }) =>
  json(res, 200, { access_token: `tok-${Math.random().toString(36).slice(2)}`, token_type: 'Bearer', ...extra });

/** fault name → how the endpoint answers its n-th request (n counts from 0 per fault). */
const FAULTS: Record<string, (res: ServerResponse, n: number) => void> = {
  reset: (res) => res.socket?.destroy(),
  'status-500': (res) => json(res, 500, { error: 'server_error' }),
  'flaky-500': (res, n) => (n === 0 ? json(res, 500, {}) : token(res)),
  'status-429-then-ok': (res, n) => (n === 0 ? json(res, 429, {}, { 'retry-after': '1' }) : token(res)),
  'status-429-long': (res) => json(res, 429, {}, { 'retry-after': '120' }),
  hang: () => undefined,
  'hang-mid-body': (res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' });
    res.write('{"access_token":');
  },
  malformed: (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"access_token": "abc", ');
  },
  'empty-200': (res) => {
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  },
  'expires-absent': (res) => token(res, {}),
  'expires-zero': (res) => token(res, { expires_in: 0 }),
  'expires-negative': (res) => token(res, { expires_in: -30 }),
  'expires-string': (res) => token(res, { expires_in: 'soon' }),
  'expires-numeric-string': (res) => token(res, { expires_in: '120' }),
  'expires-huge': (res) => token(res, { expires_in: 1e12 }),
  'invalid-client': (res) => json(res, 401, { error: 'invalid_client', error_description: 'bad secret' }),
  'invalid-scope': (res) => json(res, 400, { error: 'invalid_scope' }),
  'jwt-flaky': (res, n) => (n === 0 ? json(res, 503, {}) : token(res)),
  /** An `issuer` connection whose discovery document never comes. */
  'discovery-hang': () => undefined,
};

describe('token endpoint faults', () => {
  let endpoint: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;
  const seen = new Map<string, number>();

  before(async () => {
    endpoint = await startTokenEndpoint((req, res) => {
      const fault = (req.url ?? '').split('/')[1]!;
      const n = seen.get(fault) ?? 0;
      seen.set(fault, n + 1);
      FAULTS[fault]!(res, n);
    });
    upstream = await startEchoUpstream();
    const refused = await closedPort();
    const connection = (name: string, url: string, auth = '{ secret: s }') => `
  ${name}:
    clientId: client-${name}
    ${name.startsWith('discovery') ? 'issuer' : 'tokenUrl'}: ${url}
    clientSecret: ${auth}
    timeouts: { connectMs: 300, totalMs: 400 }
    retry: { maxAttempts: ${MAX_ATTEMPTS}, budgetMs: ${BUDGET_MS}, retryAfterCapMs: 1200 }`;
    const names = Object.keys(FAULTS);
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets:
  s: { value: secret-0123456789 }
  jwt: { value: ${JWT_SECRET} }
connections:${names.map((n) => connection(n, `${endpoint.url}/${n}`, n.startsWith('jwt') ? '{ secret: jwt, method: client_secret_jwt }' : '{ secret: s }')).join('')}${connection('refused', `http://127.0.0.1:${refused}/token`)}
routes:${[...names, 'refused']
      .map(
        (n) => `
  - name: ${n}
    match: { pathPrefix: /f/${n} }
    upstream: ${upstream.url}
    stripPrefix: true
    auth: { connection: ${n} }`,
      )
      .join('')}
`);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await endpoint.close();
  });

  async function call(fault: string) {
    const { value: response, ms } = await timed(() => fetch(`${gw.url}/f/${fault}/x`));
    const body = (await response.json()) as Record<string, unknown>;
    return { response, body, ms };
  }

  async function expectProblem(fault: string, status: number, code: string) {
    const result = await call(fault);
    assert.equal(result.response.status, status, JSON.stringify(result.body));
    assert.equal(result.body.code, code);
    assert.equal(result.body.connection, fault);
    assert.ok(result.ms < BUDGET_MS + MARGIN_MS, `took ${result.ms} ms`);
    return result;
  }

  const requestsFor = (fault: string) => seen.get(fault) ?? 0;

  it('connection refused: TOKEN_ENDPOINT_UNAVAILABLE with Retry-After after at most maxAttempts tries', async () => {
    const { response } = await expectProblem('refused', 503, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.match(response.headers.get('retry-after') ?? '', /^\d+$/);
    const attempts = await metricValue(gw.admin, 'tokengate_token_requests_total', { connection: 'refused', outcome: 'failure' });
    assert.ok(attempts >= 1 && attempts <= MAX_ATTEMPTS, `attempts ${attempts}`);
  });

  it('connection reset: TOKEN_ENDPOINT_UNAVAILABLE with Retry-After, retried at most maxAttempts times', async () => {
    const { response } = await expectProblem('reset', 503, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.match(response.headers.get('retry-after') ?? '', /^\d+$/);
    assert.ok(requestsFor('reset') >= 2 && requestsFor('reset') <= MAX_ATTEMPTS);
  });

  it('HTTP 500 every time: TOKEN_ENDPOINT_UNAVAILABLE after a bounded number of retries', async () => {
    const { response } = await expectProblem('status-500', 503, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.match(response.headers.get('retry-after') ?? '', /^\d+$/);
    assert.ok(requestsFor('status-500') >= 2 && requestsFor('status-500') <= MAX_ATTEMPTS);
  });

  it('HTTP 500 once: the retry succeeds and the caller never sees the failure', async () => {
    const { response, ms } = await call('flaky-500');
    assert.equal(response.status, 200);
    assert.equal(requestsFor('flaky-500'), 2);
    assert.ok(ms < BUDGET_MS + MARGIN_MS);
  });

  it('429 with Retry-After: 1 is honoured (waits at least a second), then the retry succeeds', async () => {
    const { response, ms } = await call('status-429-then-ok');
    assert.equal(response.status, 200);
    assert.equal(requestsFor('status-429-then-ok'), 2);
    assert.ok(ms >= 950, `retried after ${ms} ms, before Retry-After`);
    assert.ok(ms < BUDGET_MS + MARGIN_MS);
  });

  it('429 with a Retry-After beyond the budget: no pointless retry, the caller is told when to come back', async () => {
    const { response } = await expectProblem('status-429-long', 503, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.equal(requestsFor('status-429-long'), 1);
    assert.equal(response.headers.get('retry-after'), '120');
    // The next caller is not sent to a server that asked for quiet.
    const again = await expectProblem('status-429-long', 503, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.ok(Number(again.response.headers.get('retry-after')) > 1);
    assert.equal(requestsFor('status-429-long'), 1);
  });

  it('a token endpoint that never answers: TOKEN_ENDPOINT_TIMEOUT inside the budget', async () => {
    await expectProblem('hang', 504, 'TOKEN_ENDPOINT_TIMEOUT');
    assert.ok(requestsFor('hang') >= 2 && requestsFor('hang') <= MAX_ATTEMPTS);
  });

  it('an issuer whose discovery document never comes: TOKEN_ENDPOINT_TIMEOUT inside the budget', async () => {
    await expectProblem('discovery-hang', 504, 'TOKEN_ENDPOINT_TIMEOUT');
    assert.ok(requestsFor('discovery-hang') <= MAX_ATTEMPTS);
  });

  it('a response that stalls half-way through its body: TOKEN_ENDPOINT_TIMEOUT inside the budget', async () => {
    await expectProblem('hang-mid-body', 504, 'TOKEN_ENDPOINT_TIMEOUT');
    assert.ok(requestsFor('hang-mid-body') <= MAX_ATTEMPTS);
  });

  for (const fault of ['malformed', 'empty-200', 'expires-zero', 'expires-negative', 'expires-string']) {
    it(`${fault}: TOKEN_RESPONSE_INVALID, not retried, remembered for the next caller`, async () => {
      await expectProblem(fault, 502, 'TOKEN_RESPONSE_INVALID');
      await expectProblem(fault, 502, 'TOKEN_RESPONSE_INVALID');
      assert.equal(requestsFor(fault), 1);
    });
  }

  async function expiresIn(connection: string): Promise<number> {
    const body = (await (await fetch(`${gw.admin}/connections`)).json()) as {
      connections: { connection: string; expiresInSeconds: number | null }[];
    };
    return body.connections.find((c) => c.connection === connection)!.expiresInSeconds!;
  }

  it('expires_in absent: the token is used and cached for token.defaultLifetimeSeconds', async () => {
    assert.equal((await call('expires-absent')).response.status, 200);
    const left = await expiresIn('expires-absent');
    assert.ok(left > 290 && left <= 300, `expires in ${left}`);
    assert.equal((await call('expires-absent')).response.status, 200);
    assert.equal(requestsFor('expires-absent'), 1);
  });

  it('expires_in as a numeric string ("120"): accepted as seconds', async () => {
    assert.equal((await call('expires-numeric-string')).response.status, 200);
    const left = await expiresIn('expires-numeric-string');
    assert.ok(left > 110 && left <= 120, `expires in ${left}`);
  });

  it('a huge expires_in is capped at a day, so a token never outlives key rotation by years', async () => {
    assert.equal((await call('expires-huge')).response.status, 200);
    const left = await expiresIn('expires-huge');
    assert.ok(left > 86_000 && left <= 86_400, `expires in ${left}`);
  });

  for (const [fault, oauthError] of [
    ['invalid-client', 'invalid_client'],
    ['invalid-scope', 'invalid_scope'],
  ] as const) {
    it(`${oauthError} is never retried and is remembered: the second caller gets it without a new request`, async () => {
      const first = await expectProblem(fault, 502, 'TOKEN_REJECTED');
      assert.equal(first.body.oauthError, oauthError);
      assert.equal(requestsFor(fault), 1);
      const second = await expectProblem(fault, 502, 'TOKEN_REJECTED');
      assert.equal(second.body.oauthError, oauthError);
      assert.equal(requestsFor(fault), 1);
    });
  }

  it('each retry of a JWT-authenticated request signs a fresh assertion', async () => {
    assert.equal((await call('jwt-flaky')).response.status, 200);
    const assertions = endpoint.received
      .filter((r) => r.url === '/jwt-flaky')
      .map((r) => new URLSearchParams(r.body.toString()).get('client_assertion'));
    assert.equal(assertions.length, 2);
    const jti = assertions.map((a) => (JSON.parse(Buffer.from(a!.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti);
    assert.notEqual(jti[0], jti[1]);
  });
});
