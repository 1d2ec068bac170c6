/**
 * Outage policy: a cached token is served while refreshes fail and never past its usable life;
 * then TOKEN_ENDPOINT_UNAVAILABLE with Retry-After. A per-connection circuit keeps a crowd of
 * callers from turning into a crowd of token requests, half-opens with one probe, closes on success.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { TokenError } from '../src/errors/gateway.js';
import { TokenProvider } from '../src/tokens/provider.js';
import { tokenKey, type TokenObserver } from '../src/tokens/types.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { json, startEchoUpstream, startTokenEndpoint, type TestServer } from './support/servers.js';

type Mode = 'ok' | 'fail' | 'hold';

/** A token endpoint the test switches between answering, failing (500) and holding requests. */
async function controllableEndpoint(expiresIn: number) {
  const state = { mode: 'ok' as Mode, issued: 0, held: [] as ServerResponse[], arrivals: [] as (() => void)[] };
  const server = await startTokenEndpoint((_req, res) => {
    for (const notify of state.arrivals.splice(0)) notify();
    if (state.mode === 'fail') return json(res, 500, { error: 'server_error' });
    if (state.mode === 'hold') return void state.held.push(res);
    state.issued++;
    json(res, 200, { access_token: `tok-${state.issued}`, token_type: 'Bearer', expires_in: expiresIn });
  });
  return {
    server,
    state,
    get requests() {
      return server.received.length;
    },
    /** Resolves when the next token request arrives. */
    nextArrival: () => new Promise<void>((done) => state.arrivals.push(done)),
    release(mode: 'ok' | 'fail') {
      for (const res of state.held.splice(0)) {
        if (mode === 'fail') json(res, 500, {});
        else json(res, 200, { access_token: `tok-${++state.issued}`, token_type: 'Bearer', expires_in: expiresIn });
      }
    },
  };
}

describe('outage policy through the gateway', () => {
  let endpoint: Awaited<ReturnType<typeof controllableEndpoint>>;
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    endpoint = await controllableEndpoint(2);
    upstream = await startEchoUpstream();
    const connection = (name: string) => `
  ${name}:
    clientId: ${name}
    tokenUrl: ${endpoint.server.url}/${name}
    clientSecret: { secret: s }
    timeouts: { connectMs: 1000, totalMs: 1000 }
    retry: { maxAttempts: 3, budgetMs: 3000 }`;
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: secret-0123456789 } }
connections:${connection('served')}${connection('crowd')}
routes:
  - { name: served, match: { pathPrefix: /served }, upstream: ${upstream.url}, auth: { connection: served } }
  - { name: crowd, match: { pathPrefix: /crowd }, upstream: ${upstream.url}, auth: { connection: crowd } }
`);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await endpoint.server.close();
  });

  afterEach(() => {
    endpoint.state.mode = 'ok';
  });

  it('keeps serving the cached token while refreshes fail, until it is no longer valid; then 503 with Retry-After', async () => {
    const first = await fetch(`${gw.url}/served/a`);
    assert.equal(first.status, 200);
    const { authorization: cached } = (await first.json()) as { authorization: string };
    const obtained = Date.now();
    endpoint.state.mode = 'fail';
    const requestsBefore = endpoint.requests;
    let refreshesWhileServing = 0;
    let lastOk = 0;
    let failure: Response | undefined;
    // Steady traffic across the token's 2 s lifetime.
    while (Date.now() - obtained < 4_000) {
      const response = await fetch(`${gw.url}/served/a`);
      if (response.status !== 200) {
        failure = response;
        break;
      }
      const echo = (await response.json()) as { authorization: string };
      assert.equal(echo.authorization, cached);
      lastOk = Date.now();
      refreshesWhileServing = endpoint.requests - requestsBefore;
      await delay(40);
    }
    assert.ok(failure !== undefined, 'the expired token was still served');
    assert.ok(refreshesWhileServing > 0, 'no refresh was attempted while the token was served');
    // Never past the expiry (2 s from when it was requested, which was before `obtained`).
    assert.ok(lastOk - obtained < 2_000, `served ${lastOk - obtained} ms after it was obtained`);
    assert.equal(failure.status, 503);
    const problem = (await failure.json()) as { code: string };
    assert.equal(problem.code, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.match(failure.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  });

  it('50 concurrent callers during an outage cause a bounded handful of token requests, not 50', async () => {
    endpoint.state.mode = 'fail';
    const before = endpoint.requests;
    const wave = () =>
      Promise.all(
        Array.from({ length: 50 }, () =>
          fetch(`${gw.url}/crowd/x`).then(async (r) => ({
            status: r.status,
            retryAfter: r.headers.get('retry-after'),
            body: (await r.json()) as { code: string },
          })),
        ),
      );
    for (let i = 0; i < 3; i++) {
      const answers = await wave();
      for (const answer of answers) {
        assert.equal(answer.status, 503);
        assert.equal(answer.body.code, 'TOKEN_ENDPOINT_UNAVAILABLE');
        assert.match(answer.retryAfter ?? '', /^[1-9]\d*$/);
      }
    }
    const spent = endpoint.requests - before;
    // One shared load per wave (3 attempts), and the circuit opens at 5 consecutive failures.
    assert.ok(spent >= 3 && spent <= 6, `${spent} token requests for 150 callers`);
    const again = endpoint.requests;
    await wave();
    assert.equal(endpoint.requests, again, 'the open circuit still let requests through');
  });
});

describe('circuit per connection (TokenProvider)', () => {
  const OPEN_MS = 200;
  let endpoint: Awaited<ReturnType<typeof controllableEndpoint>>;
  let provider: TokenProvider;
  const observer: TokenObserver = { tokenRequest: () => undefined, tokenFailure: () => undefined };
  let n = 0;
  /** A fresh cache key (different params) on the same connection each time. */
  const key = () => tokenKey('c', { resource: `r${++n}` });

  before(async () => {
    endpoint = await controllableEndpoint(300);
  });

  after(async () => {
    await endpoint.server.close();
  });

  afterEach(() => {
    provider.close();
    endpoint.state.mode = 'ok';
  });

  async function makeProvider(options: { rejectionMemoryMs?: number } = {}) {
    const config = await buildConfigTextOnly(
      `
secrets: { s: { value: secret-0123456789 } }
connections:
  c:
    clientId: c
    tokenUrl: ${endpoint.server.url}/token
    clientSecret: { secret: s }
    retry: { maxAttempts: 1 }
`,
      '/tmp/resilience-outage.yaml',
    );
    provider = new TokenProvider(config.connections.values(), observer, undefined, {
      circuitFailureThreshold: 3,
      circuitOpenMs: OPEN_MS,
      ...options,
    });
  }

  async function failing(promise: Promise<unknown>): Promise<TokenError> {
    const error = await promise.then(
      () => assert.fail('expected a token failure'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TokenError);
    return error;
  }

  async function openCircuit() {
    endpoint.state.mode = 'fail';
    for (let i = 0; i < 3; i++) assert.equal((await failing(provider.get(key()))).reason, 'http_status');
  }

  it('opens after repeated failures: the next caller gets circuit_open with Retry-After and no request is sent', async () => {
    await makeProvider();
    await openCircuit();
    const sent = endpoint.requests;
    const error = await failing(provider.get(key()));
    assert.equal(error.code, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.equal(error.reason, 'circuit_open');
    assert.ok(error.retryAfter !== undefined && error.retryAfter >= 1);
    assert.equal(endpoint.requests, sent);
  });

  it('half-opens with exactly one probe, and closes when the probe succeeds', async () => {
    await makeProvider();
    await openCircuit();
    await delay(OPEN_MS + 50);
    endpoint.state.mode = 'hold';
    const sent = endpoint.requests;
    const arrived = endpoint.nextArrival();
    const callers = Array.from({ length: 10 }, () =>
      provider.get(key()).then(
        () => 'token',
        (e: TokenError) => e.reason,
      ),
    );
    await arrived;
    endpoint.release('ok');
    const outcomes = await Promise.all(callers);
    assert.equal(endpoint.requests - sent, 1, 'more than one probe');
    assert.deepEqual(outcomes.filter((o) => o === 'token').length, 1);
    assert.deepEqual(outcomes.filter((o) => o === 'circuit_open').length, 9);
    endpoint.state.mode = 'ok';
    await provider.get(key());
    assert.equal(endpoint.requests - sent, 2, 'the circuit did not close after the successful probe');
  });

  it('a failed probe opens the circuit again', async () => {
    await makeProvider();
    await openCircuit();
    await delay(OPEN_MS + 50);
    const sent = endpoint.requests;
    assert.equal((await failing(provider.get(key()))).reason, 'http_status');
    assert.equal((await failing(provider.get(key()))).reason, 'circuit_open');
    assert.equal(endpoint.requests - sent, 1);
  });

  it('remembers a rejection only briefly: after rejectionMemoryMs the server is asked again', async () => {
    await makeProvider({ rejectionMemoryMs: 100 });
    const rejecting = await startTokenEndpoint((_req, res) => json(res, 400, { error: 'invalid_scope' }));
    try {
      const config = await buildConfigTextOnly(
        `
secrets: { s: { value: secret-0123456789 } }
connections:
  c: { clientId: c, tokenUrl: ${rejecting.url}/token, clientSecret: { secret: s } }
`,
        '/tmp/resilience-outage.yaml',
      );
      provider.update(config.connections.values());
      const k = key();
      assert.equal((await failing(provider.get(k))).oauthError, 'invalid_scope');
      assert.equal((await failing(provider.get(k))).oauthError, 'invalid_scope');
      assert.equal(rejecting.received.length, 1);
      await delay(150);
      await failing(provider.get(k));
      assert.equal(rejecting.received.length, 2);
    } finally {
      await rejecting.close();
    }
  });
});
