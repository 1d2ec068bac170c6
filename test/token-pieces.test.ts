/**
 * The token provider's pieces, each on its own (single flight, deadline, circuit, retry policy,
 * immutable errors), and the provider driven through a swapped transport: no sockets needed to
 * show that a transport which never settles still ends every caller's wait within the budget.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { TokenError } from '../src/errors/gateway.js';
import { TestCooldown } from '../src/admin/test-cooldown.js';
import { Circuits } from '../src/tokens/circuit.js';
import { withDeadline } from '../src/tokens/deadline.js';
import type { AuthServerTransport } from '../src/tokens/endpoint.js';
import { MAX_TOKEN_LIFETIME_MS, plausibleTimes } from '../src/tokens/lifetime.js';
import { TokenProvider } from '../src/tokens/provider.js';
import { tokenKey, type CachedToken } from '../src/tokens/types.js';
import { nextAttemptAt } from '../src/tokens/retry.js';
import { SingleFlight } from '../src/tokens/single-flight.js';

const observer = { tokenRequest: () => undefined, tokenFailure: () => undefined };

async function connections(retry = '{ maxAttempts: 3, budgetMs: 400 }') {
  const config = await buildConfigTextOnly(
    `
secrets: { s: { value: pieces-secret } }
connections:
  c: { clientId: gw, tokenUrl: http://127.0.0.1:1/token, clientSecret: { secret: s }, timeouts: { totalMs: 150 }, retry: ${retry} }
`,
    'pieces.yaml',
  );
  return config.connections.values();
}

describe('single flight', () => {
  it('shares one call per key and clears the entry when it settles, also on failure', async () => {
    const flights = new SingleFlight<number>();
    let calls = 0;
    const failing = () => {
      calls++;
      return Promise.reject(new Error('no'));
    };
    const a = flights.run('k', failing);
    const b = flights.run('k', failing);
    assert.equal(a, b);
    await assert.rejects(a);
    assert.equal(flights.has('k'), false);
    await assert.rejects(flights.run('k', failing));
    assert.equal(calls, 2);
  });

  it('clears the entry when the starter throws synchronously', async () => {
    const flights = new SingleFlight<number>();
    await assert.rejects(
      flights.run('k', () => {
        throw new Error('sync');
      }),
    );
    assert.equal(flights.size, 0);
  });
});

describe('deadline', () => {
  it('ends a wait on a promise that never settles, and aborts the work', async () => {
    let aborted = false;
    const started = performance.now();
    await assert.rejects(
      withDeadline(
        50,
        (signal) => {
          signal.addEventListener('abort', () => (aborted = true));
          return new Promise<never>(() => undefined);
        },
        () => new Error('expired'),
      ),
      /expired/,
    );
    assert.ok(performance.now() - started < 1_000);
    assert.equal(aborted, true);
  });
});

describe('circuit', () => {
  it('opens at the threshold, lets one probe through when half-open, closes on success', () => {
    const circuits = new Circuits({ failureThreshold: 2, openMs: 100, maxOpenMs: 1_000 });
    const now = 1_000_000;
    circuits.failure('c', false, undefined, now);
    assert.deepEqual(circuits.admit('c', now), { allowed: true, probe: false });
    circuits.failure('c', false, undefined, now);
    assert.deepEqual(circuits.admit('c', now + 50), { allowed: false, openUntil: now + 100 });
    assert.deepEqual(circuits.admit('c', now + 100), { allowed: true, probe: true });
    assert.equal(circuits.admit('c', now + 101).allowed, false, 'one probe at a time');
    circuits.success('c');
    assert.equal(circuits.openUntil('c'), 0);
  });
});

describe('retry policy', () => {
  const retryable = new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'network', { retryable: true });
  const policy = { maxAttempts: 3, retryAfterCapMs: 1_000 };

  it('gives up on final errors, spent attempts, a long Retry-After and a pause past the deadline', () => {
    const now = 0;
    assert.equal(nextAttemptAt(1, new TokenError('TOKEN_REJECTED', 'invalid_client'), policy, 10_000, now), undefined);
    assert.equal(nextAttemptAt(3, retryable, policy, 10_000, now), undefined);
    assert.equal(nextAttemptAt(1, retryable.with({ retryAfter: 5 }), policy, 10_000, now), undefined);
    assert.equal(nextAttemptAt(1, retryable.with({ retryAfter: 1 }), policy, 500, now), undefined);
    const at = nextAttemptAt(1, retryable, policy, 10_000, now);
    assert.ok(at !== undefined && at >= now && at <= 200);
  });
});

describe('errors are values', () => {
  it('with() makes a new error and leaves the shared one as it was', () => {
    const shared = new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'network', { detail: 'd', retryable: true });
    const named = shared.with({ connection: 'c', retryAfter: 3 });
    assert.notEqual(named, shared);
    assert.equal(shared.connection, undefined);
    assert.equal(shared.retryAfter, undefined);
    assert.equal(named.connection, 'c');
    assert.equal(named.retryAfter, 3);
    assert.equal(named.reason, 'network');
    assert.equal(named.retryable, true);
  });

  it('a remembered rejection is handed out unchanged to the next caller', async () => {
    const transport: AuthServerTransport = () =>
      Promise.resolve({ status: 400, headers: {}, body: Buffer.from(JSON.stringify({ error: 'invalid_client' })) });
    const provider = new TokenProvider(await connections(), observer, undefined, { transport });
    try {
      const first = await provider.get(tokenKey('c', {})).catch((error: unknown) => error as TokenError);
      const second = await provider.get(tokenKey('c', {})).catch((error: unknown) => error as TokenError);
      assert.equal(second, first);
      assert.equal(first.connection, 'c');
      assert.equal(first.oauthError, 'invalid_client');
    } finally {
      provider.close();
    }
  });
});

describe('the provider over a swapped transport', () => {
  it('a transport that never settles: TOKEN_ENDPOINT_TIMEOUT within the budget, at most maxAttempts calls, the flight cleared', async () => {
    let calls = 0;
    const transport: AuthServerTransport = () => {
      calls++;
      return new Promise(() => undefined);
    };
    const provider = new TokenProvider(await connections(), observer, undefined, { transport });
    try {
      const started = performance.now();
      const error = (await provider.get(tokenKey('c', {})).catch((e: unknown) => e)) as TokenError;
      const ms = performance.now() - started;
      assert.equal(error.code, 'TOKEN_ENDPOINT_TIMEOUT');
      assert.ok(ms < 400 + 1_000, `answered after ${ms} ms`);
      assert.ok(calls <= 3, `${calls} calls`);
      // A new caller starts a new request: nothing stuck in the single flight.
      const before = calls;
      await provider.get(tokenKey('c', {})).catch(() => undefined);
      assert.ok(calls > before);
    } finally {
      provider.close();
    }
  });

  it('the test button shares one request and replays its outcome for a moment', async () => {
    let calls = 0;
    const transport: AuthServerTransport = () => {
      calls++;
      return Promise.resolve({ status: 200, headers: {}, body: Buffer.from(JSON.stringify({ access_token: 't', expires_in: 60 })) });
    };
    const provider = new TokenProvider(await connections(), observer, undefined, { transport });
    const tests = new TestCooldown(provider, () => 'fingerprint');
    try {
      await Promise.all(Array.from({ length: 10 }, () => tests.fetchUncached('c', {})));
      await tests.fetchUncached('c', {});
      assert.equal(calls, 1);
    } finally {
      provider.close();
    }
  });

  it('the provider itself shares a test request but replays nothing (the cool-down is the admin’s)', async () => {
    let calls = 0;
    const transport: AuthServerTransport = () => {
      calls++;
      return Promise.resolve({ status: 200, headers: {}, body: Buffer.from(JSON.stringify({ access_token: 't', expires_in: 60 })) });
    };
    const provider = new TokenProvider(await connections(), observer, undefined, { transport });
    try {
      await Promise.all(Array.from({ length: 10 }, () => provider.fetchUncached('c', {})));
      assert.equal(calls, 1);
      await provider.fetchUncached('c', {});
      assert.equal(calls, 2);
    } finally {
      provider.close();
    }
  });

  it('a connection changed by a reload is tested afresh within the cool-down', async () => {
    let calls = 0;
    const transport: AuthServerTransport = () => {
      calls++;
      return Promise.resolve({ status: 200, headers: {}, body: Buffer.from(JSON.stringify({ access_token: 't', expires_in: 60 })) });
    };
    const provider = new TokenProvider(await connections(), observer, undefined, { transport });
    let fingerprint = 'before';
    const tests = new TestCooldown(provider, () => fingerprint);
    try {
      await tests.fetchUncached('c', {});
      fingerprint = 'after';
      await tests.fetchUncached('c', {});
      assert.equal(calls, 2);
    } finally {
      provider.close();
    }
  });
});

describe('plausible times (shared-cache entries)', () => {
  const now = Date.now();
  const token = (fields: Partial<CachedToken>): CachedToken => ({
    accessToken: 't',
    scope: undefined,
    obtainedAt: now,
    expiresAt: now + 60_000,
    usableUntil: now + 30_000,
    refreshAt: now + 20_000,
    ...fields,
  });

  it('accepts what the gateway writes and refuses impossible times', () => {
    assert.equal(plausibleTimes(token({}), now), true);
    assert.equal(plausibleTimes(token({ refreshAt: Number.POSITIVE_INFINITY }), now), true);
    assert.equal(plausibleTimes(token({ expiresAt: 1e300, usableUntil: 1e300 }), now), false);
    assert.equal(plausibleTimes(token({ expiresAt: now + MAX_TOKEN_LIFETIME_MS + 1, obtainedAt: now + 10 }), now), false);
    assert.equal(plausibleTimes(token({ usableUntil: now + 120_000 }), now), false, 'usable past its expiry');
    assert.equal(plausibleTimes(token({ obtainedAt: Number.NaN }), now), false);
  });
});
