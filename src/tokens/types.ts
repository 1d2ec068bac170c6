/**
 * What the rest of the gateway shares with the token side: the key a token is cached under, the
 * token as cached, the shared (fleet) store the provider asks on a local miss, and the observer
 * the provider reports to. Types only (and the key's one builder), so that cache/, proxy/ and
 * observability/ depend on the contract, not on the provider that implements it.
 */
import type { Connection } from '../config/load.js';
import type { TokenError } from '../errors/gateway.js';
import type { TokenTracer } from './tracer.js';

/** A cache key: the connection plus its effective params. Built once per route, not per request. */
export interface TokenKey {
  readonly connection: string;
  readonly params: Readonly<Record<string, string>>;
  readonly id: string;
}

/**
 * `boundTo` is the DPoP key's thumbprint (RFC 9449 §6): a token is only ever used with the key it is
 * bound to, here and in the shared cache, whose entry names derive from the id.
 */
export function tokenKey(connection: string, params: Readonly<Record<string, string>>, boundTo?: string): TokenKey {
  const sorted = Object.keys(params)
    .sort()
    .map((name) => [name, params[name]]);
  const binding = boundTo === undefined ? '' : `\u0000jkt=${boundTo}`;
  return Object.freeze({ connection, params, id: `${connection}\u0000${JSON.stringify(sorted)}${binding}` });
}

/** A token as the caches hold it, with its times (lifetime.ts computes them). */
export interface CachedToken {
  readonly accessToken: string;
  readonly scope: string | undefined;
  readonly obtainedAt: number;
  /** When the server says the token expires (ms since epoch). */
  readonly expiresAt: number;
  /** expiresAt less the skew: never injected at or after this. */
  readonly usableUntil: number;
  /** From here on a background refresh is started. */
  readonly refreshAt: number;
}

/**
 * A second cache level shared by replicas (Redis, see cache/). The provider asks it on a local miss
 * and tells it about new and invalidated tokens; `fetch` wraps the token request so a fleet makes one.
 */
export interface SharedTokenStore {
  get(key: TokenKey, connection: Connection): Promise<CachedToken | undefined>;
  fetch(key: TokenKey, connection: Connection, load: () => Promise<CachedToken>): Promise<CachedToken>;
  invalidate(key: TokenKey, connection: Connection, accessToken: string): Promise<void>;
  close(): Promise<void>;
  /** Longest `fetch` may wait for another replica before it loads itself; added to the caller's budget. */
  maxWaitMs?(connection: Connection): number;
  /** False while the store does not answer (an outage, a failover): the fleet cannot share a refresh then. */
  answers?(): boolean;
}

export interface TokenRequestContext {
  route?: string | undefined;
  requestId?: string | undefined;
  /** The traced request that started this token request: its attempts become spans of that trace. */
  trace?: TokenTracer | undefined;
}

/** Which attempt of a token request failed: `attempt` of at most `maxAttempts` (retry.maxAttempts). */
export interface AttemptNumber {
  readonly attempt: number;
  readonly maxAttempts: number;
}

/** Told about DPoP events worth a metric (the provider's observer). */
export interface DpopObserver {
  dpopNonceRetry?(connection: string, server: 'token_endpoint' | 'upstream'): void;
  /** A token request was sent again with `clientSecret.previous` (the current secret was refused). */
  secretFallback?(connection: string): void;
}

/** What the provider tells metrics, usage data and logs (observability/token-observer.ts implements it). */
export interface TokenObserver extends DpopObserver {
  tokenRequest(connection: string, outcome: 'success' | 'failure', seconds: number): void;
  tokenFailure(connection: string, error: TokenError, context: TokenRequestContext, attempt?: AttemptNumber): void;
}
