/**
 * The token provider, composed here from pieces that each do one job:
 *
 *   local cache (cache.ts) → single flight (single-flight.ts) under the caller's deadline
 *   (deadline.ts) → shared cache (cache/, optional) → rejection memory (rejections.ts) → retries
 *   (retry.ts) → attempts through the circuit (attempts.ts, circuit.ts) → token endpoint client
 *   (connection-client.ts)
 *
 * Callers only wait when no valid token exists, and never longer than the connection's budget
 * (tokenWaitBudgetMs); a token past its refresh point is renewed in the background while the
 * cached one keeps being served, and a token is never handed out past its expiry less the skew.
 */
import type { Connection } from '../config/load.js';
import { TokenError } from '../errors/gateway.js';
import { Attempts } from './attempts.js';
import { LocalTokenCache } from './cache.js';
import { Circuits, CIRCUIT_FAILURE_THRESHOLD, CIRCUIT_MAX_OPEN_MS, CIRCUIT_OPEN_MS } from './circuit.js';
import { ConnectionClient, type SecretInUse } from './connection-client.js';
import { cutShort, sleepUntil, withDeadline } from './deadline.js';
import { TimeoutSignal, type AuthServerTransport, type TokenResponse } from './endpoint.js';
import { toCachedToken } from './lifetime.js';
import { REJECTION_MEMORY_MS, Rejections } from './rejections.js';
import { BACKOFF_CAP_MS, nextAttemptAt } from './retry.js';
import { SingleFlight } from './single-flight.js';
import type { CachedToken, SharedTokenStore, TokenKey, TokenObserver, TokenRequestContext } from './types.js';

/** Knobs for tests and tuning; the defaults are the constants above. */
export interface TokenProviderOptions {
  circuitFailureThreshold?: number;
  circuitOpenMs?: number;
  circuitMaxOpenMs?: number;
  rejectionMemoryMs?: number;
  /** How token requests reach the server (tests drive the provider without sockets). */
  transport?: AuthServerTransport;
}

/**
 * The longest a caller waits for a token of `connection`: the retry budget, plus, with a shared
 * cache, the wait for another replica's request. The deadline is kept by the waiter (deadline.ts).
 */
function tokenWaitBudgetMs(connection: Connection, shared?: SharedTokenStore): number {
  return connection.retry.budgetMs + (shared?.maxWaitMs?.(connection) ?? 0);
}

export class TokenProvider {
  readonly #clients = new Map<string, ConnectionClient>();
  readonly #cache = new LocalTokenCache();
  readonly #flights = new SingleFlight<CachedToken>();
  readonly #tests = new SingleFlight<TokenResponse>();
  readonly #rejections: Rejections;
  /** Token requests through each connection's circuit, told to the observer (attempts.ts). */
  readonly #attempts: Attempts;
  /** Background refreshes that failed wait until this time before the next try. */
  readonly #refreshBackoff = new Map<string, number>();
  readonly #observer: TokenObserver;
  readonly #transport: AuthServerTransport | undefined;
  #shared: SharedTokenStore | undefined;

  constructor(connections: Iterable<Connection>, observer: TokenObserver, shared?: SharedTokenStore, options: TokenProviderOptions = {}) {
    this.#observer = observer;
    this.#shared = shared;
    this.#transport = options.transport;
    this.#rejections = new Rejections(options.rejectionMemoryMs ?? REJECTION_MEMORY_MS);
    const circuits = new Circuits({
      failureThreshold: options.circuitFailureThreshold ?? CIRCUIT_FAILURE_THRESHOLD,
      openMs: options.circuitOpenMs ?? CIRCUIT_OPEN_MS,
      maxOpenMs: options.circuitMaxOpenMs ?? CIRCUIT_MAX_OPEN_MS,
    });
    this.#attempts = new Attempts(circuits, observer);
    for (const connection of connections) this.#clients.set(connection.key, this.#client(connection));
  }

  #client(connection: Connection): ConnectionClient {
    return new ConnectionClient(connection, this.#transport, this.#observer);
  }

  /**
   * Takes a reloaded config's connections: unchanged ones (same fingerprint) keep their client and
   * cached tokens; changed and removed ones lose them. A connection whose client secret or signing
   * key alone changed (a rotation) gets a new client but keeps its cached tokens: they stay valid
   * until they expire, and the next token request uses the new secret. Its remembered rejections
   * go, so a corrected secret is tried at once.
   */
  update(connections: Iterable<Connection>): void {
    const next = new Map<string, Connection>();
    for (const connection of connections) next.set(connection.key, connection);
    for (const [key, client] of this.#clients) {
      const replacement = next.get(key);
      if (replacement?.fingerprint === client.connection.fingerprint) continue;
      client.close();
      this.#clients.delete(key);
      if (replacement?.tokensFingerprint === client.connection.tokensFingerprint) {
        this.#rejections.forgetPrefix(`${key}\u0000`);
        continue;
      }
      this.#attempts.forget(key);
      this.dropConnection(key);
    }
    for (const [key, connection] of next) if (!this.#clients.has(key)) this.#clients.set(key, this.#client(connection));
  }

  /**
   * The hot path: a valid cached token or undefined, synchronously. Starts a background refresh
   * when the token is past its refresh point.
   */
  peek(key: TokenKey, now = Date.now()): CachedToken | undefined {
    const token = this.#cache.get(key.id);
    if (token === undefined || now >= token.usableUntil) return undefined;
    if (now >= token.refreshAt && !this.#flights.has(key.id)) this.#refreshInBackground(key, now);
    return token;
  }

  /** A valid token, waiting for the token endpoint only when none is cached; settles within the budget. */
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
    this.#cache.deleteIfHolds(key.id, accessToken);
    const connection = this.#clients.get(key.connection)?.connection;
    if (connection !== undefined && this.#shared !== undefined)
      void this.#shared.invalidate(key, connection, accessToken).catch(() => undefined);
  }

  /** A connection's token endpoint, configured or discovered; undefined before discovery has run. */
  tokenEndpoint(connection: string): string | undefined {
    return this.#clients.get(connection)?.tokenEndpoint;
  }

  /** Which client secret a connection's last token request used; undefined for a connection without a client secret. */
  secretInUse(connection: string): SecretInUse | undefined {
    const client = this.#clients.get(connection);
    return client?.connection.credentials.kind === 'clientSecret' ? client.secretInUse : undefined;
  }

  /** Drops every cached token of a connection (its config changed). */
  dropConnection(connection: string): void {
    const prefix = `${connection}\u0000`;
    this.#cache.dropPrefix(prefix);
    this.#rejections.forgetPrefix(prefix);
  }

  /** Drop a cached token by key id without telling the shared store (another replica did). */
  forgetLocal(id: string): void {
    this.#cache.delete(id);
  }

  /**
   * A token straight from the token endpoint, bypassing the cache (the `token` command and the admin
   * test button, whose cool-down is admin/test-cooldown.ts). It still goes through the circuit, and
   * callers that ask at the same time share one request per connection and params.
   */
  fetchUncached(connection: string, params: Readonly<Record<string, string>>): Promise<TokenResponse> {
    const client = this.#clients.get(connection);
    if (client === undefined) return Promise.reject(new Error(`unknown connection ${connection}`));
    const id = `${connection}\u0000${JSON.stringify(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
    return this.#tests.run(id, () => {
      const { totalMs } = client.connection.timeouts;
      return withDeadline(
        totalMs,
        (signal) => this.#attempts.attempt(client, params, {}, signal, { attempt: 1, maxAttempts: 1 }),
        () => this.#attempts.budgetExpired(client, totalMs),
      );
    });
  }

  /** Soonest expiry in seconds among each connection's cached tokens (for the gauge and /usage). */
  expiries(now = Date.now()): Map<string, number> {
    return this.#cache.expiries(now);
  }

  /** Token fetches under way by connection: loads (refreshes included) and admin tests, each until it settles. */
  fetchesInFlight(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const id of [...this.#flights.keys(), ...this.#tests.keys()]) {
      // Both kinds of id start with the connection key and a NUL (tokenKey, fetchUncached).
      const connection = id.slice(0, id.indexOf('\u0000'));
      counts.set(connection, (counts.get(connection) ?? 0) + 1);
    }
    return counts;
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
    // While the shared store is down (a failover), every replica would refresh on its own: the
    // still-usable token serves instead, and once the store answers the fleet refreshes it with one
    // request. A token that stops being usable meanwhile is fetched by get(), store or not.
    if (this.#shared?.answers?.() === false) return;
    this.#load(key, {}).catch(() => {
      // Failures are already counted and logged; the cached token serves until it is unusable.
      this.#refreshBackoff.set(key.id, Date.now() + BACKOFF_CAP_MS);
    });
  }

  /**
   * Single flight under the budget: one load per key, shared by every caller that asks meanwhile,
   * settled by the deadline at the latest (so the flight is always cleared), then cached.
   */
  #load(key: TokenKey, context: TokenRequestContext): Promise<CachedToken> {
    return this.#flights.run(key.id, () => {
      const client = this.#clients.get(key.connection);
      if (client === undefined) return Promise.reject(new Error(`unknown connection ${key.connection}`));
      const shared = this.#shared;
      const budgetMs = tokenWaitBudgetMs(client.connection, shared);
      const endsAt = Date.now() + budgetMs;
      return withDeadline(
        budgetMs,
        (signal) => {
          const load = () => this.#fetchWithRetries(key, client, context, { signal, endsAt });
          return shared === undefined ? load() : shared.fetch(key, client.connection, load);
        },
        () => this.#attempts.budgetExpired(client, budgetMs),
      ).then((token) => {
        // A reload that changed the connection while this was in flight: hand the token to the
        // callers already waiting, but do not cache what the old config obtained.
        if (this.#clients.get(key.connection) === client) {
          this.#refreshBackoff.delete(key.id);
          this.#cache.set(key.id, token);
        }
        return token;
      });
    });
  }

  /**
   * A remembered rejection, then attempts with backoff inside the retry budget. Each attempt ends
   * `timeouts.totalMs` after it is sent or with the retry budget, under the caller's budget `signal`
   * (ending at `endsAt`): an attempt that would outlast that budget gets no timer of its own.
   */
  async #fetchWithRetries(
    key: TokenKey,
    client: ConnectionClient,
    context: TokenRequestContext,
    { signal, endsAt }: { signal: AbortSignal; endsAt: number },
  ): Promise<CachedToken> {
    const { retry, timeouts } = client.connection;
    const remembered = this.#rejections.recall(key.id);
    if (remembered !== undefined) throw remembered;
    const deadline = Date.now() + retry.budgetMs;
    for (let attempt = 1; ; attempt++) {
      const sentAt = Date.now();
      const attemptEndsAt = Math.min(sentAt + timeouts.totalMs, deadline);
      const own =
        attemptEndsAt < endsAt ? cutShort(signal, attemptEndsAt - sentAt, () => new TimeoutSignal('token request timed out')) : undefined;
      try {
        const response = await this.#attempts
          .attempt(client, key.params, context, own?.signal ?? signal, {
            attempt,
            maxAttempts: retry.maxAttempts,
          })
          .finally(() => own?.clear());
        return toCachedToken(client.connection.token, response, sentAt);
      } catch (error) {
        if (!(error instanceof TokenError)) throw error;
        if (!error.retryable) {
          if (error.reason !== 'circuit_open') this.#rejections.remember(key.id, error);
          throw error;
        }
        const resumeAt = signal.aborted ? undefined : nextAttemptAt(attempt, error, retry, deadline);
        if (resumeAt === undefined) throw this.#attempts.withRetryAfter(error, key.connection);
        // Not before the Retry-After has passed by the clock the circuit reads, or it would still be open.
        await sleepUntil(resumeAt, signal);
      }
    }
  }
}
