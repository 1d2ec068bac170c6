/**
 * The shared token cache of a fleet, on Redis. The provider's in-process cache stays in front (a hit
 * never leaves the process); on a local miss every replica asks here, and one replica per key — the
 * holder of a short lease — calls the token endpoint while the others wait for its result.
 *
 * Redis is an optimisation, never a dependency: every call has a short time-out, and any failure
 * falls back to the replica fetching on its own, as it would without Redis.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Metrics } from '../observability/metrics.js';
import type { Connection } from '../config/load.js';
import type { RedisTopology } from '../config/types.js';
import type { Secret } from '../config/secret.js';
import type { Logger } from '../observability/log.js';
import { withDeadline } from '../tokens/deadline.js';
import type { CachedToken, SharedTokenStore, TokenKey } from '../tokens/types.js';
import { CacheEvents } from './cache-events.js';
import { decodeEncryptionKey, encryptedCodec, plaintextCodec, type TokenCodec } from './crypto.js';
import { entryNames, entryToken, entryValue, fingerprintPrefix, rebased, type EntryNames } from './entry.js';
import { redisClients, type RedisClient } from './redis-clients.js';
import { INVALIDATE_SCRIPT, LEASE_SCRIPT, READ_SCRIPT, SETTLE_SCRIPT } from './scripts.js';
import { StoreHealth } from './store-health.js';
import { CacheStoreError, timedOut } from './store-errors.js';

/** Longest a Redis call may take before the replica stops waiting and goes on without it. */
export const REDIS_COMMAND_TIMEOUT_MS = 250;
/**
 * The caller's own deadline (REDIS_COMMAND_TIMEOUT_MS) ends the wait and says so with a typed
 * error; ioredis's commandTimeout, this much later, only drops the command from its queue (a
 * frozen Redis would otherwise hold every command sent to it until the connection closes).
 */
export const REDIS_DEADLINE_SLACK_MS = 50;
/** Gateway start waits this long for Redis, then serves without it until it comes. */
export const REDIS_STARTUP_WAIT_MS = 2_000;
/** The lease outlives the holder's retry budget by this, so a live holder never loses it mid-fetch. */
export const LEASE_MARGIN_MS = 1_000;
/** Waiters read the entry again this often, in case a pub/sub message was lost. */
export const LEASE_POLL_MS = 250;
/** A replica that finds another one refreshing a still-usable token looks again after this. */
export const REFRESH_RECHECK_MS = 1_000;

export interface RedisTokenStoreOptions {
  /** `cache.redis`: one server, a Sentinel-managed master or a Cluster. */
  readonly topology: RedisTopology;
  readonly keyPrefix: string;
  /** Undefined only with allowPlaintext (the config loader enforces that). */
  readonly encryptionKey: Secret | undefined;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Drops a token from this replica's in-process cache: another replica found it revoked. */
  readonly forgetLocal: (id: string) => void;
}

/**
 * Late answers (time-outs) one fetch tolerates before it fetches alone. Redis that is away fails
 * at once (no offline queue); a slow Redis still coordinates the fleet once it answers.
 */
const SLOW_ANSWERS_TOLERATED = 2;

export class RedisTokenStore implements SharedTokenStore {
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #subscribed: Promise<boolean>;
  #codec: TokenCodec;
  #key: Buffer | undefined;
  readonly #onCorrupt: () => void;
  readonly #prefix: string;
  readonly #log: Logger;
  readonly #events: CacheEvents;
  readonly #health: StoreHealth;
  /** Between the client's 'ready' and its next 'close'. */
  #connected = false;

  constructor(options: RedisTokenStoreOptions) {
    this.#log = options.log;
    this.#health = new StoreHealth(options.metrics, options.log);
    this.#events = new CacheEvents(`${options.keyPrefix}events`, options.forgetLocal);
    this.#prefix = options.keyPrefix;
    this.#onCorrupt = () =>
      this.#health.failed(
        'decode',
        new CacheStoreError('CACHE_ENTRY_UNREADABLE', 'a shared cache entry under this key does not decrypt or parse: read as a miss'),
      );
    this.#key = options.encryptionKey === undefined ? undefined : decodeEncryptionKey(options.encryptionKey.reveal());
    this.#codec = this.#key === undefined ? plaintextCodec(this.#onCorrupt) : encryptedCodec(this.#key, this.#onCorrupt);

    const { client, subscriber } = redisClients(options.topology, REDIS_COMMAND_TIMEOUT_MS + REDIS_DEADLINE_SLACK_MS);
    this.#client = client;
    this.#subscriber = subscriber;
    for (const each of [client, subscriber]) {
      // Without an 'error' listener, ioredis's connection errors would be unhandled and end the process.
      each.on('error', (error: Error) => this.#health.failed('connect', error));
    }
    // A crashed or killed Redis closes the connection before any call fails: say so at once.
    client.on('close', () => {
      this.#connected = false;
      this.#health.down('connect', new CacheStoreError('CACHE_CONNECTION_CLOSED', 'connection to the shared cache closed'));
    });
    client.on('ready', () => {
      this.#connected = true;
      this.#log.info({ event: 'cache_connected' }, 'shared token cache (Redis) connected');
      this.#health.answered();
    });
    this.#subscriber.on('message', this.#events.onMessage);
    this.#subscribed = this.#subscriber.subscribe(this.#events.channel).then(
      () => true,
      (error: unknown) => {
        this.#health.failed('subscribe', error);
        return false;
      },
    );
  }

  /**
   * A rotated cache.encryptionKey (a reload, or its secret file changed): entries are written under
   * the new key from now on, and an entry under the old key id reads as a miss and is fetched again
   * (docs/fleets.md). Turning encryption on or off takes a restart, as every cache setting does.
   */
  setEncryptionKey(key: Buffer | undefined): void {
    if (key === undefined || this.#key === undefined || key.equals(this.#key)) return;
    this.#key = key;
    this.#codec = encryptedCodec(key, this.#onCorrupt);
  }

  /** The cache.encryptionKey in use (it may rotate on reload); undefined with allowPlaintext. */
  get encryptionKey(): Buffer | undefined {
    return this.#key;
  }

  /** Resolves true once both connections are up and subscribed, false after `timeoutMs` or an error. */
  async whenConnected(timeoutMs = REDIS_STARTUP_WAIT_MS): Promise<boolean> {
    const signal = AbortSignal.timeout(timeoutMs);
    const expired = once(signal, 'abort').then(() => false);
    try {
      const ready = this.#client.status === 'ready' ? Promise.resolve() : once(this.#client, 'ready', { signal });
      return await Promise.race([Promise.all([ready, this.#subscribed]).then(([, subscribed]) => subscribed), expired]);
    } catch {
      return false;
    }
  }

  async get(key: TokenKey, connection: Connection): Promise<CachedToken | undefined> {
    try {
      return await this.#read(this.#names(key, connection).entry);
    } catch {
      return undefined;
    }
  }

  /**
   * Fleet-wide single flight. A fresh shared entry is returned as is; otherwise one replica takes
   * the lease (SET NX PX) and runs `load`, and the others wait for its "stored" message (or poll)
   * and read the result. A holder that dies lets the lease expire; the next waiter to try takes it.
   */
  async fetch(key: TokenKey, connection: Connection, load: () => Promise<CachedToken>): Promise<CachedToken> {
    const names = this.#names(key, connection);
    const leaseMs = connection.retry.budgetMs + LEASE_MARGIN_MS;
    // Two leases: long enough for a dead holder's lease to expire and a live successor to fetch.
    const giveUpAt = Date.now() + this.maxWaitMs(connection);
    // One claim for every lease attempt of this call, so that a late grant is recognised as ours.
    const claim = randomUUID();
    let slowAnswers = 0;
    for (;;) {
      let entry: CachedToken | undefined;
      let held: boolean;
      try {
        const read = await this.#readValue(names.entry);
        entry = this.#decode(names.entry, read);
        const now = Date.now();
        if (entry !== undefined && now < entry.refreshAt && now < entry.usableUntil) return entry;
        const lease = await this.#lease(names, claim, leaseMs, read[0] ?? '');
        if (lease === 'changed') continue;
        held = lease === 'held';
      } catch (error) {
        // Redis is away, or answers too late too often: this replica fetches on its own.
        if (!timedOut(error) || ++slowAnswers > SLOW_ANSWERS_TOLERATED || Date.now() >= giveUpAt) return load();
        continue;
      }
      if (held) return this.#loadAndShare(names, claim, load);
      const now = Date.now();
      // Another replica is refreshing: the token it replaces still serves meanwhile.
      if (entry !== undefined && now < entry.usableUntil) {
        return Object.freeze({ ...entry, refreshAt: Math.min(entry.usableUntil, now + REFRESH_RECHECK_MS) });
      }
      if (now >= giveUpAt) return load();
      await this.#events.news(names.entry, Math.min(LEASE_POLL_MS, giveUpAt - now));
    }
  }

  /**
   * Deletes the shared entry if it still holds `accessToken` and tells the other replicas to drop
   * their in-process copies. The script is sent before this call first yields, so this replica's
   * refetch (sent after it on the same connection) cannot read the revoked token back.
   */
  async invalidate(key: TokenKey, connection: Connection, accessToken: string): Promise<void> {
    const { entry } = this.#names(key, connection);
    try {
      const event = this.#events.message('invalidated', entry);
      await this.#eval(INVALIDATE_SCRIPT, 1, entry, fingerprintPrefix(accessToken), this.#events.channel, event);
    } catch (error) {
      this.#health.failed('invalidate', error);
    }
  }

  async close(): Promise<void> {
    this.#events.wakeAll();
    this.#health.closed();
    this.#client.disconnect();
    this.#subscriber.disconnect();
  }

  /**
   * One Lua script on the shared cache's connection, under its time-out; for other documents the
   * fleet shares (managed signing keys, cache/key-set-store.ts). Keys are given without the prefix.
   */
  runScript(script: string, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    return this.#eval(script, keys.length, ...keys.map((key) => `${this.#prefix}${key}`), ...args);
  }

  /** The full Redis key of `key` (what a value stored under it is bound to). */
  redisKey(key: string): string {
    return `${this.#prefix}${key}`;
  }

  /**
   * Whether the connection to the store is up (a closed one reconnects, following a Sentinel
   * failover). A slow answer does not count: the connection is there and coordination still works.
   */
  answers(): boolean {
    return this.#connected;
  }

  /** Longest fetch() waits for other replicas before it loads itself (giveUpAt below). */
  maxWaitMs(connection: Connection): number {
    return 2 * (connection.retry.budgetMs + LEASE_MARGIN_MS);
  }

  /** One script call under the caller's own deadline. */
  #eval(script: string, keys: number, ...args: Array<string | number>): Promise<unknown> {
    return withDeadline(
      REDIS_COMMAND_TIMEOUT_MS,
      () => this.#client.eval(script, keys, ...args),
      () => new CacheStoreError('CACHE_STORE_TIMEOUT', `the shared cache did not answer within ${REDIS_COMMAND_TIMEOUT_MS} ms`),
    );
  }

  #names(key: TokenKey, connection: Connection): EntryNames {
    const names = entryNames(this.#prefix, connection.identity, key.id);
    this.#events.serves(names.entry, key.id);
    return names;
  }

  /** The entry, its times re-based on Redis's remaining TTL; undefined for a miss or an unreadable value. */
  async #read(entry: string): Promise<CachedToken | undefined> {
    return this.#decode(entry, await this.#readValue(entry));
  }

  /** The entry's stored value (null for none) and its remaining TTL in ms. */
  async #readValue(entry: string): Promise<[string | null, number]> {
    let reply: [string | null, number];
    try {
      reply = (await this.#eval(READ_SCRIPT, 1, entry)) as [string | null, number];
    } catch (error) {
      this.#health.failed('read', error);
      throw error;
    }
    this.#health.answered();
    // A peer that is not Redis (or a broken one) may answer anything: only a value and a TTL are a read.
    const [value, ttl] = Array.isArray(reply) ? reply : [];
    if ((value !== null && typeof value !== 'string') || typeof ttl !== 'number') {
      const error = new CacheStoreError(
        'CACHE_REPLY_INVALID',
        'the shared cache answered a read with something else than a value and a TTL',
      );
      this.#health.failed('decode', error);
      throw error;
    }
    return [value, ttl];
  }

  #decode(entry: string, [value, ttl]: [string | null, number]): CachedToken | undefined {
    if (value === null) return undefined;
    const token = entryToken(this.#codec, value, entry);
    if (token === undefined) return undefined;
    const times = rebased(token, ttl, Date.now());
    if (times === undefined) {
      const error = 'a shared cache entry under this key has impossible times (tampered?): read as a miss';
      this.#health.failed('decode', new CacheStoreError('CACHE_ENTRY_IMPLAUSIBLE', error));
    }
    return times;
  }

  /**
   * LEASE_SCRIPT: `held` when this replica holds the lease under `claim`, `taken` when another
   * replica does, `changed` when the entry is no longer the value `seen` (read it again).
   */
  async #lease(names: EntryNames, claim: string, leaseMs: number, seen: string): Promise<'held' | 'taken' | 'changed'> {
    try {
      const reply = await this.#eval(LEASE_SCRIPT, 2, names.lease, names.entry, claim, leaseMs, seen);
      return reply === 1 ? 'held' : reply === 2 ? 'changed' : 'taken';
    } catch (error) {
      this.#health.failed('lease', error);
      throw error;
    }
  }

  async #loadAndShare(names: EntryNames, lease: string, load: () => Promise<CachedToken>): Promise<CachedToken> {
    let token: CachedToken;
    try {
      token = await load();
    } catch (error) {
      // The waiters try the lease themselves rather than wait for it to expire.
      await this.#settle(names, lease, undefined);
      throw error;
    }
    await this.#settle(names, lease, token);
    return token;
  }

  async #settle(names: EntryNames, lease: string, token: CachedToken | undefined): Promise<void> {
    const ttl = token === undefined ? 0 : Math.floor(token.usableUntil - Date.now());
    const value = token === undefined || ttl <= 0 ? '' : entryValue(this.#codec, token, names.entry);
    try {
      await this.#eval(
        SETTLE_SCRIPT,
        2,
        names.entry,
        names.lease,
        value,
        value === '' ? 0 : ttl,
        lease,
        this.#events.channel,
        this.#events.message(value === '' ? 'released' : 'stored', names.entry),
      );
    } catch (error) {
      // The token still serves this replica; the others fetch their own when their wait ends.
      this.#health.failed('write', error);
    }
  }
}
