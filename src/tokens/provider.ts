/**
 * The token provider: cache → single flight → retries → token endpoint. Callers only wait when
 * no valid token exists; a token past its refresh point is renewed in the background while the
 * cached one keeps being served, and a token is never handed out past its expiry less the skew.
 */
import NodeCache from 'node-cache';
import type { Connection } from '../config/load.js';
import { DEFAULT_RETRY_AFTER_S, TokenError } from '../errors.js';
import { ConnectionClient } from './connection-client.js';
import type { TokenResponse } from './endpoint.js';

/** Consecutive retryable failures that open a connection's circuit. */
export const CIRCUIT_FAILURE_THRESHOLD = 5;
export const CIRCUIT_OPEN_MS = 5_000;
export const CIRCUIT_MAX_OPEN_MS = 60_000;
/** How long a rejected token request (4xx OAuth error) is answered from memory. */
export const REJECTION_MEMORY_MS = 5_000;
export const BACKOFF_BASE_MS = 100;
export const BACKOFF_CAP_MS = 2_000;
/** Refresh ahead at a random point between these fractions of the usable lifetime (spreads a fleet). */
export const REFRESH_AT_MIN = 0.75;
export const REFRESH_AT_MAX = 0.9;
/** ...but at least this many round trips of the last token request before the token becomes unusable. */
export const REFRESH_LEAD_ROUND_TRIPS = 2;
/** The skew is at most this share of the lifetime, so short-lived tokens stay usable. */
export const MAX_SKEW_SHARE = 0.1;

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

/** A cache key: the connection plus its effective params. Built once per route, not per request. */
export interface TokenKey {
  readonly connection: string;
  readonly params: Readonly<Record<string, string>>;
  readonly id: string;
}

export function tokenKey(connection: string, params: Readonly<Record<string, string>>): TokenKey {
  const sorted = Object.keys(params)
    .sort()
    .map((name) => [name, params[name]]);
  return Object.freeze({ connection, params, id: `${connection}\u0000${JSON.stringify(sorted)}` });
}

export interface TokenRequestContext {
  route?: string | undefined;
  requestId?: string | undefined;
}

/** What the provider tells metrics, usage data and logs. */
export interface TokenObserver {
  tokenRequest(connection: string, outcome: 'success' | 'failure', seconds: number): void;
  tokenFailure(connection: string, error: TokenError, context: TokenRequestContext): void;
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
}

/** Knobs for tests and tuning; the defaults are the constants above. */
export interface TokenProviderOptions {
  circuitFailureThreshold?: number;
  circuitOpenMs?: number;
  circuitMaxOpenMs?: number;
  rejectionMemoryMs?: number;
}

/** Closed while openUntil is 0; open until openUntil; half-open after it, with one probe at a time. */
interface Circuit {
  failures: number;
  openUntil: number;
  openMs: number;
  probing: boolean;
}

/** Timers run on a monotonic clock and may wake a millisecond before Date.now() reaches `time`. */
async function sleepUntil(time: number): Promise<void> {
  for (let left = time - Date.now(); left > 0; left = time - Date.now()) {
    await new Promise<void>((resolve) => setTimeout(resolve, left).unref());
  }
}

export class TokenProvider {
  readonly #clients = new Map<string, ConnectionClient>();
  readonly #cache: NodeCache;
  readonly #inflight = new Map<string, Promise<CachedToken>>();
  readonly #rejections = new Map<string, { error: TokenError; until: number }>();
  readonly #circuits = new Map<string, Circuit>();
  /** Background refreshes that failed wait until this time before the next try. */
  readonly #refreshBackoff = new Map<string, number>();
  readonly #observer: TokenObserver;
  readonly #options: Required<TokenProviderOptions>;
  #shared: SharedTokenStore | undefined;

  constructor(connections: Iterable<Connection>, observer: TokenObserver, shared?: SharedTokenStore, options: TokenProviderOptions = {}) {
    // node-cache clones values by default; tokens are immutable, so cloning is pure waste.
    this.#cache = new NodeCache({ useClones: false, checkperiod: 60, deleteOnExpire: true });
    this.#observer = observer;
    this.#shared = shared;
    this.#options = {
      circuitFailureThreshold: options.circuitFailureThreshold ?? CIRCUIT_FAILURE_THRESHOLD,
      circuitOpenMs: options.circuitOpenMs ?? CIRCUIT_OPEN_MS,
      circuitMaxOpenMs: options.circuitMaxOpenMs ?? CIRCUIT_MAX_OPEN_MS,
      rejectionMemoryMs: options.rejectionMemoryMs ?? REJECTION_MEMORY_MS,
    };
    for (const connection of connections) this.#clients.set(connection.key, new ConnectionClient(connection));
  }

  /**
   * Takes a reloaded config's connections: unchanged ones (same fingerprint) keep their client and
   * cached tokens; changed and removed ones lose them.
   */
  update(connections: Iterable<Connection>): void {
    const next = new Map<string, Connection>();
    for (const connection of connections) next.set(connection.key, connection);
    for (const [key, client] of this.#clients) {
      if (next.get(key)?.fingerprint === client.connection.fingerprint) continue;
      client.close();
      this.#clients.delete(key);
      this.#circuits.delete(key);
      this.dropConnection(key);
    }
    for (const [key, connection] of next) if (!this.#clients.has(key)) this.#clients.set(key, new ConnectionClient(connection));
  }

  /**
   * The hot path: a valid cached token or undefined, synchronously. Starts a background refresh
   * when the token is past its refresh point.
   */
  peek(key: TokenKey, now = Date.now()): CachedToken | undefined {
    const token = this.#cache.get<CachedToken>(key.id);
    if (token === undefined || now >= token.usableUntil) return undefined;
    if (now >= token.refreshAt && !this.#inflight.has(key.id)) this.#refreshInBackground(key, now);
    return token;
  }

  /** A valid token, waiting for the token endpoint only when none is cached. */
  get(key: TokenKey, context: TokenRequestContext = {}): Promise<CachedToken> {
    const cached = this.peek(key);
    if (cached !== undefined) return Promise.resolve(cached);
    return this.#load(key, context);
  }

  /**
   * Drop `accessToken` if it is still the cached one (an upstream said it is no longer valid).
   * Concurrent callers that saw the same revoked token then share one refetch.
   */
  invalidate(key: TokenKey, accessToken: string): void {
    const cached = this.#cache.get<CachedToken>(key.id);
    if (cached?.accessToken === accessToken) this.#cache.del(key.id);
    const connection = this.#clients.get(key.connection)?.connection;
    if (connection !== undefined && this.#shared !== undefined)
      void this.#shared.invalidate(key, connection, accessToken).catch(() => undefined);
  }

  /** A connection's token endpoint, configured or discovered; undefined before discovery has run. */
  tokenEndpoint(connection: string): string | undefined {
    return this.#clients.get(connection)?.tokenEndpoint;
  }

  /** Drops every cached token of a connection (its config changed). */
  dropConnection(connection: string): void {
    const prefix = `${connection}\u0000`;
    for (const id of this.#cache.keys()) if (id.startsWith(prefix)) this.#cache.del(id);
    for (const id of this.#rejections.keys()) if (id.startsWith(prefix)) this.#rejections.delete(id);
  }

  /** Drop a cached token by key id without telling the shared store (another replica did). */
  forgetLocal(id: string): void {
    this.#cache.del(id);
  }

  /** A token straight from the token endpoint, bypassing the cache (the `token` command). */
  async fetchUncached(connection: string, params: Readonly<Record<string, string>>): Promise<TokenResponse> {
    const client = this.#clients.get(connection);
    if (client === undefined) throw new Error(`unknown connection ${connection}`);
    const started = performance.now();
    try {
      const response = await client.requestToken(params, client.connection.timeouts.totalMs);
      this.#observer.tokenRequest(connection, 'success', (performance.now() - started) / 1000);
      return response;
    } catch (error) {
      if (error instanceof TokenError) {
        this.#observer.tokenRequest(connection, 'failure', (performance.now() - started) / 1000);
        this.#observer.tokenFailure(connection, error, {});
      }
      throw error;
    }
  }

  /** Soonest expiry in seconds among each connection's cached tokens (for the gauge). */
  expiries(now = Date.now()): Map<string, number> {
    const out = new Map<string, number>();
    for (const id of this.#cache.keys()) {
      const token = this.#cache.get<CachedToken>(id);
      if (token === undefined) continue;
      const connection = id.slice(0, id.indexOf('\u0000'));
      const seconds = (token.expiresAt - now) / 1000;
      const previous = out.get(connection);
      if (previous === undefined || seconds < previous) out.set(connection, seconds);
    }
    return out;
  }

  setShared(shared: SharedTokenStore | undefined): void {
    this.#shared = shared;
  }

  close(): void {
    this.#cache.close();
    for (const client of this.#clients.values()) client.close();
  }

  #refreshInBackground(key: TokenKey, now: number): void {
    const notBefore = this.#refreshBackoff.get(key.id);
    if (notBefore !== undefined && now < notBefore) return;
    this.#load(key, {}).catch(() => {
      // Failures are already counted and logged; the cached token serves until it is unusable.
      this.#refreshBackoff.set(key.id, Date.now() + BACKOFF_CAP_MS);
    });
  }

  /** Single flight: one in-flight load per key, cleared in finally. */
  #load(key: TokenKey, context: TokenRequestContext): Promise<CachedToken> {
    const existing = this.#inflight.get(key.id);
    if (existing !== undefined) return existing;
    const client = this.#clients.get(key.connection);
    if (client === undefined) return Promise.reject(new Error(`unknown connection ${key.connection}`));
    const load = () => this.#fetchWithRetries(key, client, context);
    const promise = (this.#shared === undefined ? load() : this.#shared.fetch(key, client.connection, load))
      .then((token) => {
        // A reload that changed the connection while this was in flight: hand the token to the
        // callers already waiting, but do not cache what the old config obtained.
        if (this.#clients.get(key.connection) === client) this.#store(key, token);
        return token;
      })
      .finally(() => this.#inflight.delete(key.id));
    this.#inflight.set(key.id, promise);
    return promise;
  }

  #store(key: TokenKey, token: CachedToken): void {
    this.#refreshBackoff.delete(key.id);
    const ttlSeconds = Math.ceil((token.usableUntil - Date.now()) / 1000);
    if (ttlSeconds > 0) this.#cache.set(key.id, token, ttlSeconds);
  }

  /** A remembered rejection, the circuit, then attempts with backoff inside the caller's budget. */
  async #fetchWithRetries(key: TokenKey, client: ConnectionClient, context: TokenRequestContext): Promise<CachedToken> {
    const { retry, timeouts } = client.connection;
    const rejection = this.#rejections.get(key.id);
    if (rejection !== undefined) {
      if (Date.now() < rejection.until) throw rejection.error;
      this.#rejections.delete(key.id);
    }
    const deadline = Date.now() + retry.budgetMs;
    for (let attempt = 1; ; attempt++) {
      const probe = this.#enterCircuit(key.connection, context);
      const sentAt = Date.now();
      const started = performance.now();
      try {
        const response = await client.requestToken(key.params, Math.max(1, Math.min(timeouts.totalMs, deadline - sentAt)));
        const token = this.#toCached(client.connection, response, sentAt);
        this.#observer.tokenRequest(key.connection, 'success', (performance.now() - started) / 1000);
        this.#closeCircuit(key.connection);
        return token;
      } catch (error) {
        if (!(error instanceof TokenError)) {
          // Not the server's doing (a signing failure, say): free the probe slot so the circuit cannot stick.
          const circuit = this.#circuits.get(key.connection);
          if (probe && circuit !== undefined) circuit.probing = false;
          throw error;
        }
        this.#observer.tokenRequest(key.connection, 'failure', (performance.now() - started) / 1000);
        error.connection = key.connection;
        this.#observer.tokenFailure(key.connection, error, context);
        if (!error.retryable) {
          // An OAuth error is an answer: the server is up, so it closes the circuit like a success.
          this.#closeCircuit(key.connection);
          this.#rejections.set(key.id, { error, until: Date.now() + this.#options.rejectionMemoryMs });
          throw error;
        }
        const retryAfterMs = error.retryAfter === undefined ? undefined : error.retryAfter * 1000;
        this.#recordFailure(key.connection, probe, retryAfterMs);
        // Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"). A Retry-After
        // (RFC 9110 §10.2.3) is waited for when it fits under the cap; a longer one ends the attempts.
        const backoff = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
        const resumeAt = Date.now() + Math.max(backoff, retryAfterMs ?? 0);
        const giveUp = attempt >= retry.maxAttempts || (retryAfterMs ?? 0) > retry.retryAfterCapMs || resumeAt >= deadline;
        if (giveUp) throw this.#withRetryAfter(error, key.connection);
        // Not before the Retry-After has passed by the clock the circuit reads, or it would still be open.
        await sleepUntil(resumeAt);
      }
    }
  }

  /**
   * Lifetimes count from when the request was sent: the server cannot have issued the token
   * earlier, so any transit time is on the safe side of the expiry.
   */
  #toCached(connection: Connection, response: TokenResponse, sentAt: number): CachedToken {
    const now = Date.now();
    const seconds = response.expiresIn ?? connection.token.defaultLifetimeSeconds;
    const lifetime = seconds * 1000;
    const skew = Math.min(connection.token.expirySkewSeconds * 1000, lifetime * MAX_SKEW_SHARE);
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
      refreshAt: connection.token.refreshAhead
        ? Math.max(now, Math.min(sentAt + (usableUntil - sentAt) * share, latest))
        : Number.POSITIVE_INFINITY,
    });
  }

  /** SPEC: TOKEN_ENDPOINT_UNAVAILABLE carries a Retry-After: the server's, else the circuit's, else a default. */
  #withRetryAfter(error: TokenError, connection: string): TokenError {
    if (error.code !== 'TOKEN_ENDPOINT_UNAVAILABLE' || error.retryAfter !== undefined) return error;
    const openUntil = this.#circuits.get(connection)?.openUntil ?? 0;
    error.retryAfter = Math.max(DEFAULT_RETRY_AFTER_S, Math.ceil((openUntil - Date.now()) / 1000));
    return error;
  }

  /**
   * Throws circuit_open while the circuit is open; when it is half-open lets exactly one attempt
   * through as the probe (returns true for it).
   */
  #enterCircuit(connection: string, context: TokenRequestContext): boolean {
    const circuit = this.#circuits.get(connection);
    if (circuit === undefined || circuit.openUntil === 0) return false;
    const now = Date.now();
    if (now >= circuit.openUntil && !circuit.probing) {
      circuit.probing = true;
      return true;
    }
    const error = new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'circuit_open', {
      detail: 'the token endpoint failed repeatedly; tokengate is not calling it for a moment',
      connection,
      retryAfter: Math.max(DEFAULT_RETRY_AFTER_S, Math.ceil((circuit.openUntil - now) / 1000)),
    });
    this.#observer.tokenFailure(connection, error, context);
    throw error;
  }

  /** A retryable failure: counts towards opening the circuit; a failed probe reopens it for longer. */
  #recordFailure(connection: string, probe: boolean, retryAfterMs: number | undefined): void {
    const { circuitFailureThreshold, circuitOpenMs, circuitMaxOpenMs } = this.#options;
    let circuit = this.#circuits.get(connection);
    if (circuit === undefined) {
      circuit = { failures: 0, openUntil: 0, openMs: circuitOpenMs, probing: false };
      this.#circuits.set(connection, circuit);
    }
    circuit.failures++;
    const now = Date.now();
    if (probe) {
      circuit.probing = false;
      circuit.openMs = Math.min(circuit.openMs * 2, circuitMaxOpenMs);
      circuit.openUntil = now + circuit.openMs;
    } else if (circuit.openUntil === 0 && circuit.failures >= circuitFailureThreshold) {
      circuit.openUntil = now + circuit.openMs;
    }
    // The server said when to come back: nobody on this connection calls it before then.
    if (retryAfterMs !== undefined) circuit.openUntil = Math.max(circuit.openUntil, now + Math.min(retryAfterMs, circuitMaxOpenMs));
  }

  #closeCircuit(connection: string): void {
    this.#circuits.delete(connection);
  }
}
