/**
 * The token provider: cache → single flight → retries → token endpoint. Callers only wait when
 * no valid token exists; a token past its refresh point is renewed in the background while the
 * cached one keeps being served, and a token is never handed out past its expiry less the skew.
 */
import NodeCache from 'node-cache';
import type { Connection } from '../config/load.js';
import { TokenError } from '../errors.js';
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
/** Refresh ahead at a random point between these fractions of the lifetime (spreads a fleet). */
export const REFRESH_AT_MIN = 0.75;
export const REFRESH_AT_MAX = 0.9;
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

interface Circuit {
  failures: number;
  openUntil: number;
  openMs: number;
  probing: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class TokenProvider {
  readonly #clients = new Map<string, ConnectionClient>();
  readonly #cache: NodeCache;
  readonly #inflight = new Map<string, Promise<CachedToken>>();
  readonly #rejections = new Map<string, { error: TokenError; until: number }>();
  readonly #circuits = new Map<string, Circuit>();
  /** Background refreshes that failed wait until this time before the next try. */
  readonly #refreshBackoff = new Map<string, number>();
  readonly #observer: TokenObserver;
  #shared: SharedTokenStore | undefined;

  constructor(connections: Iterable<Connection>, observer: TokenObserver, shared?: SharedTokenStore) {
    // node-cache clones values by default; tokens are immutable, so cloning is pure waste.
    this.#cache = new NodeCache({ useClones: false, checkperiod: 60, deleteOnExpire: true });
    this.#observer = observer;
    this.#shared = shared;
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

  connection(key: string): Connection | undefined {
    return this.#clients.get(key)?.connection;
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
    if (connection !== undefined && this.#shared !== undefined) void this.#shared.invalidate(key, connection, accessToken).catch(() => undefined);
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
    const connection = this.#clients.get(key.connection)?.connection;
    if (connection === undefined) return Promise.reject(new Error(`unknown connection ${key.connection}`));
    const load = () => this.#fetchWithRetries(key, context);
    const promise = (this.#shared === undefined ? load() : this.#shared.fetch(key, connection, load))
      .then((token) => {
        this.#store(key, token);
        return token;
      })
      .finally(() => this.#inflight.delete(key.id));
    this.#inflight.set(key.id, promise);
    return promise;
  }

  #store(key: TokenKey, token: CachedToken): void {
    this.#refreshBackoff.delete(key.id);
    const ttlSeconds = Math.ceil((token.usableUntil - Date.now()) / 1000);
    // expires_in 0: usable for the requests already waiting on it, never cached.
    if (ttlSeconds > 0) this.#cache.set(key.id, token, ttlSeconds);
  }

  /** A remembered rejection, the circuit, then attempts with backoff inside the caller's budget. */
  async #fetchWithRetries(key: TokenKey, context: TokenRequestContext): Promise<CachedToken> {
    const client = this.#clients.get(key.connection)!;
    const { retry, timeouts } = client.connection;
    const rejection = this.#rejections.get(key.id);
    if (rejection !== undefined) {
      if (Date.now() < rejection.until) throw rejection.error;
      this.#rejections.delete(key.id);
    }
    const deadline = Date.now() + retry.budgetMs;
    for (let attempt = 1; ; attempt++) {
      this.#enterCircuit(key.connection, context);
      const started = performance.now();
      try {
        const remaining = deadline - Date.now();
        const response = await client.requestToken(key.params, Math.max(1, Math.min(timeouts.totalMs, remaining)));
        this.#observer.tokenRequest(key.connection, 'success', (performance.now() - started) / 1000);
        this.#closeCircuit(key.connection);
        return this.#toCached(client.connection, response);
      } catch (error) {
        if (!(error instanceof TokenError)) throw error;
        this.#observer.tokenRequest(key.connection, 'failure', (performance.now() - started) / 1000);
        error.connection = key.connection;
        this.#observer.tokenFailure(key.connection, error, context);
        if (!error.retryable) {
          this.#exitCircuit(key.connection, true);
          this.#rejections.set(key.id, { error, until: Date.now() + REJECTION_MEMORY_MS });
          throw error;
        }
        this.#exitCircuit(key.connection, false);
        // Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"); Retry-After wins, capped.
        let delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
        if (error.retryAfter !== undefined) delay = Math.max(delay, Math.min(error.retryAfter * 1000, retry.retryAfterCapMs));
        if (attempt >= retry.maxAttempts || Date.now() + delay >= deadline) throw error;
        await sleep(delay);
      }
    }
  }

  #toCached(connection: Connection, response: TokenResponse): CachedToken {
    const now = Date.now();
    const lifetime = (response.expiresIn ?? connection.token.defaultLifetimeSeconds) * 1000;
    const skew = Math.min(connection.token.expirySkewSeconds * 1000, lifetime * MAX_SKEW_SHARE);
    const share = REFRESH_AT_MIN + Math.random() * (REFRESH_AT_MAX - REFRESH_AT_MIN);
    return Object.freeze({
      accessToken: response.accessToken,
      scope: response.scope,
      obtainedAt: now,
      expiresAt: now + lifetime,
      usableUntil: now + lifetime - skew,
      refreshAt: connection.token.refreshAhead ? now + lifetime * share : Number.POSITIVE_INFINITY,
    });
  }

  /** Throws circuit_open while the circuit is open; lets exactly one probe through when half-open. */
  #enterCircuit(connection: string, context: TokenRequestContext): void {
    const circuit = this.#circuits.get(connection);
    if (circuit === undefined || circuit.failures < CIRCUIT_FAILURE_THRESHOLD) return;
    const now = Date.now();
    if (now >= circuit.openUntil && !circuit.probing) {
      circuit.probing = true;
      return;
    }
    const error = new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'circuit_open', {
      detail: 'the token endpoint failed repeatedly; tokengate is not calling it for a moment',
      connection,
      retryAfter: Math.max(1, Math.ceil((circuit.openUntil - now) / 1000)),
    });
    this.#observer.tokenFailure(connection, error, context);
    throw error;
  }

  #exitCircuit(connection: string, answered: boolean): void {
    // An OAuth error is an answer: the server is up, so it closes the circuit like a success.
    if (answered) return this.#closeCircuit(connection);
    let circuit = this.#circuits.get(connection);
    if (circuit === undefined) {
      circuit = { failures: 0, openUntil: 0, openMs: CIRCUIT_OPEN_MS, probing: false };
      this.#circuits.set(connection, circuit);
    }
    circuit.failures++;
    if (circuit.failures >= CIRCUIT_FAILURE_THRESHOLD) {
      // A failed probe doubles the open time, up to a cap.
      if (circuit.probing) circuit.openMs = Math.min(circuit.openMs * 2, CIRCUIT_MAX_OPEN_MS);
      circuit.openUntil = Date.now() + circuit.openMs;
    }
    circuit.probing = false;
  }

  #closeCircuit(connection: string): void {
    this.#circuits.delete(connection);
  }
}
