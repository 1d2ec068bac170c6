/**
 * A token's times: when it stops being injected (expiry less the skew), when it is refreshed
 * ahead, and the longest lifetime the gateway ever grants, which bounds what is believed from
 * the token endpoint, from the config and from the shared cache alike.
 */
import { TokenError } from '../errors/gateway.js';
import type { CachedToken } from './types.js';

/**
 * The longest lifetime the gateway ever grants a token: an `expires_in` (or a configured default)
 * beyond it is capped, so a token never outlives key rotations by days, and a shared-cache entry
 * that claims more is not one this gateway wrote.
 */
export const MAX_TOKEN_LIFETIME_S = 24 * 60 * 60;
export const MAX_TOKEN_LIFETIME_MS = MAX_TOKEN_LIFETIME_S * 1000;
/** Refresh ahead at a random point between these fractions of the usable lifetime (spreads a fleet). */
export const REFRESH_AT_MIN = 0.75;
export const REFRESH_AT_MAX = 0.9;
/** ...but at least this many round trips of the last token request before the token becomes unusable. */
export const REFRESH_LEAD_ROUND_TRIPS = 2;
/** The skew is at most this share of the lifetime, so short-lived tokens stay usable. */
export const MAX_SKEW_SHARE = 0.1;

/** What a token response says about the token's life (endpoint.ts's TokenResponse has these). */
export interface IssuedToken {
  readonly accessToken: string;
  readonly expiresIn: number | undefined;
  readonly scope: string | undefined;
}

/** A connection's `token` settings. */
export interface LifetimePolicy {
  readonly defaultLifetimeSeconds: number;
  readonly expirySkewSeconds: number;
  readonly refreshAhead: boolean;
}

/**
 * Lifetimes count from when the request was sent: the server cannot have issued the token
 * earlier, so any transit time is on the safe side of the expiry.
 */
export function toCachedToken(policy: LifetimePolicy, response: IssuedToken, sentAt: number, now = Date.now()): CachedToken {
  const seconds = Math.min(response.expiresIn ?? policy.defaultLifetimeSeconds, MAX_TOKEN_LIFETIME_S);
  const lifetime = seconds * 1000;
  const skew = Math.min(policy.expirySkewSeconds * 1000, lifetime * MAX_SKEW_SHARE);
  const usableUntil = sentAt + lifetime - skew;
  if (usableUntil <= now) {
    // expires_in 0, or shorter than the round trip: injecting it would send an expired token.
    throw new TokenError('TOKEN_RESPONSE_INVALID', 'invalid_response', {
      detail: `the token's lifetime (expires_in ${seconds}) was over before it arrived`,
      endpointStatus: 200,
    });
  }
  // A jittered share of the usable life, moved earlier when needed so that a refresh as slow as
  // this request still lands before the token becomes unusable (short-lived tokens, slow servers).
  const share = REFRESH_AT_MIN + Math.random() * (REFRESH_AT_MAX - REFRESH_AT_MIN);
  const latest = usableUntil - REFRESH_LEAD_ROUND_TRIPS * (now - sentAt);
  return Object.freeze({
    accessToken: response.accessToken,
    scope: response.scope,
    obtainedAt: now,
    expiresAt: sentAt + lifetime,
    usableUntil,
    refreshAt: policy.refreshAhead ? Math.max(now, Math.min(sentAt + (usableUntil - sentAt) * share, latest)) : Number.POSITIVE_INFINITY,
  });
}

/**
 * Whether times read from outside the process (the shared cache) are ones this gateway could have
 * written: finite, in order, and expiring no later than the longest lifetime from `now`. Anything
 * else (tampering, a bug, another program's key) must never reach a cache, a gauge or a date.
 */
export function plausibleTimes(token: CachedToken, now = Date.now()): boolean {
  const { obtainedAt, expiresAt, usableUntil, refreshAt } = token;
  // NaN and ±Infinity also fail the order and lifetime checks below, so mutating this guard is equivalent.
  // Stryker disable next-line ConditionalExpression,MethodExpression,ArrayDeclaration: equivalent (above)
  if (![obtainedAt, expiresAt, usableUntil].every(Number.isFinite)) return false;
  if (typeof refreshAt !== 'number' || Number.isNaN(refreshAt) || refreshAt === Number.NEGATIVE_INFINITY) return false;
  if (!(obtainedAt <= usableUntil && usableUntil <= expiresAt)) return false;
  return expiresAt - obtainedAt <= MAX_TOKEN_LIFETIME_MS && expiresAt <= now + MAX_TOKEN_LIFETIME_MS;
}
