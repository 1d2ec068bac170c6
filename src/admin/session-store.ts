/**
 * Where console sessions and sign-ins in progress are kept (`admin.sessions.store`): in this
 * process, or in Redis so that every replica of a fleet accepts a session another one started.
 *
 * Entries are found by the SHA-256 of their id, never the id itself: whoever can read the store
 * (a Redis dump, a debugger) cannot turn what they read into a cookie. In Redis the value is
 * sealed with AES-256-GCM under `cache.encryptionKey` (src/cache/crypto.ts) with the Redis key as
 * additional data, so an entry cannot be forged, read, or moved to another id.
 */
import { createHash } from 'node:crypto';
import { decodeEncryptionKey, openText, sealText } from '../cache/crypto.js';
import { redisClient, type RedisClient } from '../cache/redis-clients.js';
import type { Config, RedisTopology } from '../config/types.js';
import type { Logger } from '../observability/log.js';

/** Sessions (`session`) and sign-ins waiting for the provider's answer (`login`) live apart. */
export type EntryKind = 'session' | 'login';

export interface SessionStore {
  put(kind: EntryKind, id: string, value: object, ttlMs: number): Promise<void>;
  get(kind: EntryKind, id: string): Promise<unknown>;
  /** Reads and deletes in one step: a sign-in in progress is used once, whoever asks twice. */
  take(kind: EntryKind, id: string): Promise<unknown>;
  delete(kind: EntryKind, id: string): Promise<void>;
  /**
   * A rotated cache.encryptionKey (on reload): entries are sealed under the new key from now on,
   * and one sealed under the old key reads as no entry (its holder signs in again).
   */
  setEncryptionKey(key: Buffer | undefined): void;
  close(): Promise<void>;
}

/** Per kind: enough for every operator; a flood of sign-ins cannot grow memory past it. */
export const MAX_MEMORY_ENTRIES = 1_000;
/**
 * A session check is on the path of every admin request: Redis gets a little longer than the token
 * cache's 250 ms, and a store that does not answer means "not signed in" (fail closed).
 */
export const SESSION_REDIS_TIMEOUT_MS = 1_000;

const digest = (id: string): string => createHash('sha256').update(id).digest('base64url');

export class MemorySessionStore implements SessionStore {
  /**
   * One map per kind, each bounded on its own: a flood of /auth/login (anyone may start a
   * sign-in) pushes out only older sign-ins in progress, never a session.
   */
  readonly #entries: Record<EntryKind, Map<string, { value: object; expiresAt: number }>> = { session: new Map(), login: new Map() };

  put(kind: EntryKind, id: string, value: object, ttlMs: number): Promise<void> {
    const entries = this.#entries[kind];
    prune(entries);
    entries.set(digest(id), { value, expiresAt: Date.now() + ttlMs });
    return Promise.resolve();
  }

  get(kind: EntryKind, id: string): Promise<unknown> {
    const entries = this.#entries[kind];
    const entry = entries.get(digest(id));
    if (entry === undefined || entry.expiresAt > Date.now()) return Promise.resolve(entry?.value);
    entries.delete(digest(id));
    return Promise.resolve(undefined);
  }

  async take(kind: EntryKind, id: string): Promise<unknown> {
    const value = await this.get(kind, id);
    this.#entries[kind].delete(digest(id));
    return value;
  }

  delete(kind: EntryKind, id: string): Promise<void> {
    this.#entries[kind].delete(digest(id));
    return Promise.resolve();
  }

  setEncryptionKey(): void {
    // Nothing is sealed in memory.
  }

  close(): Promise<void> {
    for (const entries of Object.values(this.#entries)) entries.clear();
    return Promise.resolve();
  }
}

/** Drops expired entries, then the oldest (Map order is insertion order) down to the bound. */
function prune(entries: Map<string, { expiresAt: number }>): void {
  const now = Date.now();
  for (const [name, entry] of entries) if (entry.expiresAt <= now) entries.delete(name);
  for (const name of entries.keys()) {
    if (entries.size < MAX_MEMORY_ENTRIES) break;
    entries.delete(name);
  }
}

const TAKE_SCRIPT = `local v = redis.call('GET', KEYS[1]) if v then redis.call('DEL', KEYS[1]) end return v`;

export class RedisSessionStore implements SessionStore {
  readonly #client: RedisClient;
  #key: Buffer;
  readonly #prefix: string;

  constructor(options: { topology: RedisTopology; keyPrefix: string; encryptionKey: Buffer; log: Logger }) {
    this.#key = options.encryptionKey;
    this.#prefix = `${options.keyPrefix}admin:`;
    // The same server, Sentinel master or Cluster as the token cache (cache.redis). A sign-in right
    // after start waits for the connection (within the command time-out) instead of failing.
    this.#client = redisClient(options.topology, {
      commandTimeout: SESSION_REDIS_TIMEOUT_MS,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
    });
    let reported = false;
    // Without an 'error' listener, ioredis's connection errors would be unhandled and end the process.
    this.#client.on('error', (error: Error) => {
      if (reported) return;
      reported = true;
      options.log.warn({ event: 'session_store_error', err: error }, 'the admin session store (Redis) is not answering');
    });
    this.#client.on('ready', () => (reported = false));
  }

  async put(kind: EntryKind, id: string, value: object, ttlMs: number): Promise<void> {
    const name = this.#name(kind, id);
    await this.#client.set(name, sealText(this.#key, JSON.stringify(value), name), 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async get(kind: EntryKind, id: string): Promise<unknown> {
    const name = this.#name(kind, id);
    return this.#open(name, await this.#client.get(name));
  }

  async take(kind: EntryKind, id: string): Promise<unknown> {
    const name = this.#name(kind, id);
    return this.#open(name, (await this.#client.eval(TAKE_SCRIPT, 1, name)) as string | null);
  }

  async delete(kind: EntryKind, id: string): Promise<void> {
    await this.#client.del(this.#name(kind, id));
  }

  setEncryptionKey(key: Buffer | undefined): void {
    if (key !== undefined) this.#key = key;
  }

  close(): Promise<void> {
    this.#client.disconnect();
    return Promise.resolve();
  }

  #name(kind: EntryKind, id: string): string {
    return `${this.#prefix}${kind}:${digest(id)}`;
  }

  /** Anything that does not open under this key (another key, damaged, forged) is no entry at all. */
  #open(name: string, value: string | null): unknown {
    if (value === null) return undefined;
    try {
      const text = openText(this.#key, value, name);
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    } catch {
      return undefined;
    }
  }
}

/** The store `admin.sessions.store` names; a start-only setting, like the token cache's. */
export function createSessionStore(config: Config, log: Logger): SessionStore {
  const key = config.cache.encryptionKey === undefined ? undefined : decodeEncryptionKey(config.cache.encryptionKey.reveal());
  // The loader refuses store: redis without cache.encryptionKey, and the compile stage a key that does not decode.
  if (config.admin.sessions.store !== 'redis' || key === undefined) return new MemorySessionStore();
  return new RedisSessionStore({ topology: config.cache.redis.topology, keyPrefix: config.cache.redis.keyPrefix, encryptionKey: key, log });
}
