/**
 * A token's times, pinned one by one (tokens/lifetime.ts): when it stops being injected, when it
 * is refreshed ahead, the caps on what the token endpoint, the config and the shared cache are
 * believed, and the refusal of a token whose life was over before it arrived.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import fc from 'fast-check';
import { TokenError } from '../src/errors/gateway.js';
import {
  MAX_TOKEN_LIFETIME_MS,
  MAX_TOKEN_LIFETIME_S,
  plausibleTimes,
  REFRESH_AT_MAX,
  REFRESH_AT_MIN,
  toCachedToken,
  type LifetimePolicy,
} from '../src/tokens/lifetime.js';
import type { CachedToken } from '../src/tokens/types.js';

const policy: LifetimePolicy = { defaultLifetimeSeconds: 300, expirySkewSeconds: 30, refreshAhead: true };
const issued = (expiresIn: number | undefined) => ({ accessToken: 'at', expiresIn, scope: 'read' });
const SENT = 1_000_000;

afterEach(() => mock.restoreAll());

function withRandom(value: number): void {
  mock.method(Math, 'random', () => value);
}

describe('toCachedToken: expiry and skew', () => {
  it('counts the lifetime from when the request was sent, less the skew', () => {
    const token = toCachedToken(policy, issued(600), SENT, SENT + 100);
    assert.equal(token.expiresAt, SENT + 600_000);
    assert.equal(token.usableUntil, SENT + 600_000 - 30_000);
    assert.equal(token.obtainedAt, SENT + 100);
    assert.equal(token.accessToken, 'at');
    assert.equal(token.scope, 'read');
    assert.ok(Object.isFrozen(token));
  });

  it('uses the configured default lifetime when expires_in is absent', () => {
    const token = toCachedToken(policy, issued(undefined), SENT, SENT);
    assert.equal(token.expiresAt, SENT + 300_000);
  });

  it('caps expires_in at the longest lifetime the gateway grants', () => {
    const token = toCachedToken(policy, issued(MAX_TOKEN_LIFETIME_S * 10), SENT, SENT);
    assert.equal(token.expiresAt, SENT + MAX_TOKEN_LIFETIME_MS);
    const atCap = toCachedToken(policy, issued(MAX_TOKEN_LIFETIME_S), SENT, SENT);
    assert.equal(atCap.expiresAt, SENT + MAX_TOKEN_LIFETIME_MS);
  });

  it('holds the skew to a tenth of a short lifetime, so the token stays usable', () => {
    const token = toCachedToken(policy, issued(10), SENT, SENT);
    assert.equal(token.usableUntil, SENT + 10_000 - 1_000);
    // At exactly ten times the skew both limits agree.
    assert.equal(toCachedToken(policy, issued(300), SENT, SENT).usableUntil, SENT + 300_000 - 30_000);
  });

  it('refuses a token whose usable life was over before it arrived (TOKEN_RESPONSE_INVALID)', () => {
    for (const [expiresIn, now] of [
      [0, SENT],
      [10, SENT + 9_000],
      [10, SENT + 60_000],
    ] as const) {
      assert.throws(
        () => toCachedToken(policy, issued(expiresIn), SENT, now),
        (error: unknown) =>
          error instanceof TokenError &&
          error.code === 'TOKEN_RESPONSE_INVALID' &&
          error.reason === 'invalid_response' &&
          error.endpointStatus === 200 &&
          String(error.detail).includes(`expires_in ${expiresIn}`),
      );
    }
  });

  it('accepts a token usable for one more millisecond', () => {
    const token = toCachedToken(policy, issued(10), SENT, SENT + 8_999);
    assert.equal(token.usableUntil, SENT + 9_000);
  });
});

describe('toCachedToken: refresh ahead', () => {
  it('refreshes at 75 % of the usable life at the low end of the jitter', () => {
    withRandom(0);
    const token = toCachedToken(policy, issued(400), SENT, SENT);
    // usable life 370 s; 75 % of it
    assert.equal(token.refreshAt, SENT + 370_000 * REFRESH_AT_MIN);
  });

  it('refreshes at 90 % of the usable life at the high end of the jitter', () => {
    withRandom(1);
    const token = toCachedToken(policy, issued(400), SENT, SENT);
    assert.equal(token.refreshAt, SENT + 370_000 * REFRESH_AT_MAX);
  });

  it('moves the refresh earlier so that two slow round trips still land before the token is unusable', () => {
    withRandom(1);
    // usable until SENT + 90 s; the request took 20 s, so refresh by 90 - 2 × 20 = 50 s.
    const token = toCachedToken(policy, issued(100), SENT, SENT + 20_000);
    assert.equal(token.refreshAt, SENT + 50_000);
  });

  it('never schedules a refresh in the past: a very slow request refreshes at once', () => {
    withRandom(0.5);
    const token = toCachedToken(policy, issued(100), SENT, SENT + 40_000);
    assert.equal(token.refreshAt, SENT + 40_000);
  });

  it('never refreshes ahead when refreshAhead is off', () => {
    const token = toCachedToken({ ...policy, refreshAhead: false }, issued(400), SENT, SENT);
    assert.equal(token.refreshAt, Number.POSITIVE_INFINITY);
  });

  it('the refresh point lies between the round-trip bound, now and the usable end (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 * MAX_TOKEN_LIFETIME_S }), fc.integer({ min: 0, max: 60_000 }), (expiresIn, took) => {
        const now = SENT + took;
        let token: CachedToken;
        try {
          token = toCachedToken(policy, issued(expiresIn), SENT, now);
        } catch {
          return true;
        }
        const usable = token.usableUntil - SENT;
        assert.ok(token.refreshAt >= now);
        assert.ok(token.refreshAt <= Math.max(now, SENT + usable * REFRESH_AT_MAX));
        assert.ok(token.refreshAt < token.usableUntil);
        assert.ok(token.usableUntil <= token.expiresAt);
        return true;
      }),
    );
  });
});

describe('plausibleTimes: what is believed from the shared cache', () => {
  const now = SENT;
  const token = (fields: Partial<CachedToken>): CachedToken => ({
    accessToken: 't',
    scope: undefined,
    obtainedAt: now,
    expiresAt: now + 60_000,
    usableUntil: now + 30_000,
    refreshAt: now + 20_000,
    ...fields,
  });

  it('accepts the times the gateway writes, refresh ahead on or off', () => {
    assert.equal(plausibleTimes(token({}), now), true);
    assert.equal(plausibleTimes(token({ refreshAt: Number.POSITIVE_INFINITY }), now), true);
    assert.equal(plausibleTimes(toCachedToken(policy, issued(600), now, now), now), true);
  });

  for (const field of ['obtainedAt', 'expiresAt', 'usableUntil'] as const) {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      it(`refuses ${field} = ${bad}`, () => {
        assert.equal(plausibleTimes(token({ [field]: bad }), now), false);
      });
    }
  }

  it('refuses a refreshAt that is NaN, minus infinity or not a number', () => {
    assert.equal(plausibleTimes(token({ refreshAt: Number.NaN }), now), false);
    assert.equal(plausibleTimes(token({ refreshAt: Number.NEGATIVE_INFINITY }), now), false);
    assert.equal(plausibleTimes(token({ refreshAt: '5' as unknown as number }), now), false);
  });

  it('refuses times out of order, and accepts them equal', () => {
    assert.equal(plausibleTimes(token({ obtainedAt: now + 31_000 }), now), false, 'obtained after usable');
    assert.equal(plausibleTimes(token({ usableUntil: now + 61_000 }), now), false, 'usable after expiry');
    assert.equal(plausibleTimes(token({ obtainedAt: now + 30_000 }), now), true, 'obtained at the usable end');
    assert.equal(plausibleTimes(token({ usableUntil: now + 60_000 }), now), true, 'usable to the expiry');
  });

  it('refuses a lifetime longer than the gateway grants, and accepts one exactly that long', () => {
    const long = { obtainedAt: now, usableUntil: now + 1_000 };
    assert.equal(plausibleTimes(token({ ...long, expiresAt: now + MAX_TOKEN_LIFETIME_MS }), now), true);
    assert.equal(plausibleTimes(token({ ...long, expiresAt: now + MAX_TOKEN_LIFETIME_MS + 1 }), now), false);
  });

  it('refuses a lifetime longer than the gateway grants even when the expiry is within reach of now', () => {
    const early = now - 10_000;
    const fields = { obtainedAt: early, usableUntil: early + 1_000 };
    assert.equal(plausibleTimes(token({ ...fields, expiresAt: early + MAX_TOKEN_LIFETIME_MS }), now), true);
    assert.equal(plausibleTimes(token({ ...fields, expiresAt: early + MAX_TOKEN_LIFETIME_MS + 1 }), now), false);
  });

  it('refuses an expiry further ahead of now than the longest lifetime, even with a late obtainedAt', () => {
    const late = now + 10_000;
    const fields = { obtainedAt: late, usableUntil: late + 1_000 };
    assert.equal(plausibleTimes(token({ ...fields, expiresAt: now + MAX_TOKEN_LIFETIME_MS }), now), true);
    assert.equal(plausibleTimes(token({ ...fields, expiresAt: now + MAX_TOKEN_LIFETIME_MS + 1 }), now), false);
  });
});
