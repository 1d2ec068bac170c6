/**
 * `privateKeyJwt.managed`: signing keys tokengate makes (jose's generateKeyPair), publishes as a
 * JWKS (`GET /jwks/KEY.json` on the admin listener) and rotates on a fixed schedule.
 *
 * The schedule of a key set starts at its epoch E; with R = rotateEvery and O = overlap, key n
 *   - is in the JWKS from E + n·R − O (the first key from E: nothing can announce it earlier),
 *   - signs during [E + n·R, E + (n+1)·R),
 *   - stays in the JWKS until E + (n+1)·R + O.
 * So an authorization server that fetches the JWKS at least every O (its `Cache-Control` max-age
 * is O/2) knows every key before it signs, and still knows it while a replica whose clock is
 * behind by less than O signs with it.
 *
 * With a shared store (Redis, src/cache/key-set-store.ts) the key set is one document the fleet
 * shares, written with compare-and-set: the replica whose timer fires first generates key n, the
 * others find it and adopt it; whoever loses a race adopts the winner's. Every replica therefore
 * signs with a key that every replica's JWKS publishes.
 */
import { createHash, createPrivateKey, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, generateKeyPair, type JWK } from 'jose';
import type { Connection, ManagedKeySettings } from '../config/types.js';
import { TokenError } from '../errors/gateway.js';
import type { Logger } from 'pino';
import type { AssertionKey } from './client-auth.js';

/** The longest timer used: a schedule of months is followed in steps of at most this. */
const MAX_TIMER_STEP_MS = 3_600_000;
/** After a failed sync (the shared store away), the next try comes this much later at the latest. */
const RETRY_SYNC_MS = 1_000;

/** The fleet's copy of key sets: a document per name, with a version for compare-and-set. */
export interface SharedKeySets {
  /**
   * The document and its version, undefined when there is none; `text` undefined when it is sealed
   * under another key (a rotated cache.encryptionKey). Throws when the store cannot answer.
   */
  read(name: string): Promise<{ version: number; text: string | undefined } | undefined>;
  /** Writes version `expected + 1` (1 when `expected` is undefined) only if the stored one is still `expected`. */
  write(name: string, expected: number | undefined, text: string, ttlMs: number): Promise<boolean>;
}

interface RingKey {
  readonly n: number;
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
  readonly createdAt: number;
}

/** The shared document: private keys as JWKs (the store encrypts the whole document). */
interface KeySetDocument {
  epoch: number;
  keys: Array<{ n: number; createdAt: number; jwk: JWK }>;
}

/** One key as /connections and the console show it: public facts only. */
export interface ManagedKeySummary {
  readonly kid: string;
  readonly state: 'next' | 'signing' | 'previous';
  readonly createdAt: string;
  readonly ageSeconds: number;
}

async function newKey(n: number, algorithm: ManagedKeySettings['algorithm'], now: number): Promise<RingKey> {
  const pair = await generateKeyPair(algorithm, { extractable: true });
  return ringKey(n, KeyObject.from(pair.privateKey), now, algorithm);
}

async function ringKey(n: number, privateKey: KeyObject, createdAt: number, algorithm: string): Promise<RingKey> {
  const publicJwk = privateKey.export({ format: 'jwk' }) as JWK;
  for (const field of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) delete publicJwk[field];
  // RFC 7638: the thumbprint names the key, the same for every replica that holds it.
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return { n, kid, privateKey, publicJwk: { ...publicJwk, kid, alg: algorithm, use: 'sig' }, createdAt };
}

/** One connection's keys and their schedule. */
class KeyRing {
  readonly #connection: string;
  readonly #settings: ManagedKeySettings;
  readonly #name: string;
  readonly #shared: SharedKeySets | undefined;
  readonly #log: Logger;
  #epoch: number | undefined;
  #version: number | undefined;
  #keys = new Map<number, RingKey>();
  #syncing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #sharedDown = false;
  /** Keys were made while the shared store was away: the fleet has not seen them. */
  #madeAlone = false;
  /** What was published and which key signed at the last sync, for the log lines. */
  #published = new Set<string>();
  #signing: string | undefined;

  constructor(connection: string, settings: ManagedKeySettings, name: string, shared: SharedKeySets | undefined, log: Logger) {
    this.#connection = connection;
    this.#settings = settings;
    this.#name = name;
    this.#shared = shared;
    this.#log = log;
  }

  /** Brings the keys up to the schedule (shared with every caller until it settles). */
  sync(): Promise<void> {
    this.#syncing ??= this.#syncOnce().finally(() => {
      this.#syncing = undefined;
      this.#schedule();
    });
    return this.#syncing;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  /** The key that signs now, generated or adopted first if the schedule moved past the last sync. */
  async signingKey(): Promise<AssertionKey> {
    let key = this.#current();
    if (key === undefined) {
      await this.sync();
      key = this.#current();
    }
    if (key === undefined) {
      throw new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'credentials_unavailable', {
        detail: `no managed signing key for ${this.#connection} yet`,
        retryable: true,
        retryAfter: 1,
      });
    }
    return { key: key.privateKey, algorithm: this.#settings.algorithm, header: { kid: key.kid } };
  }

  /** The public keys to publish now. */
  jwks(now = Date.now()): JWK[] {
    return [...this.#keys.values()].filter((key) => now < this.#retireAt(key.n)).map((key) => key.publicJwk);
  }

  /** `Cache-Control: max-age` of the JWKS: half the overlap, so a server that honours it sees a new key in time. */
  get maxAgeSeconds(): number {
    return Math.floor(this.#settings.overlapMs / 2000);
  }

  summary(now = Date.now()): ManagedKeySummary[] {
    const signing = this.#signingIndex(now);
    return [...this.#keys.values()]
      .filter((key) => now < this.#retireAt(key.n))
      .sort((a, b) => b.n - a.n)
      .map((key) => ({
        kid: key.kid,
        state: key.n > signing ? 'next' : key.n === signing ? 'signing' : 'previous',
        createdAt: new Date(key.createdAt).toISOString(),
        ageSeconds: Math.max(0, Math.floor((now - key.createdAt) / 1000)),
      }));
  }

  #current(now = Date.now()): RingKey | undefined {
    return this.#epoch === undefined ? undefined : this.#keys.get(this.#signingIndex(now));
  }

  #signingIndex(now: number): number {
    return this.#epoch === undefined ? -1 : Math.max(0, Math.floor((now - this.#epoch) / this.#settings.rotateEveryMs));
  }

  #publishAt(n: number): number {
    return n === 0 ? this.#epoch! : this.#epoch! + n * this.#settings.rotateEveryMs - this.#settings.overlapMs;
  }

  #retireAt(n: number): number {
    return this.#epoch! + (n + 1) * this.#settings.rotateEveryMs + this.#settings.overlapMs;
  }

  /** The keys the schedule wants at `now`: from the oldest not yet retired to the newest already published. */
  #wanted(now: number): number[] {
    const { rotateEveryMs: r, overlapMs: o } = this.#settings;
    const epoch = this.#epoch!;
    const first = Math.max(0, Math.floor((now - epoch - o) / r));
    const last = Math.max(this.#signingIndex(now), Math.floor((now - epoch + o) / r));
    const out: number[] = [];
    for (let n = first; n <= last; n++) out.push(n);
    return out;
  }

  async #syncOnce(): Promise<void> {
    for (let round = 0; round < 3 && !this.#closed; round++) {
      const now = Date.now();
      const stored = await this.#readShared();
      const sharing = this.#shared !== undefined && !this.#sharedDown;
      if (stored?.text !== undefined) await this.#adopt(stored.text, stored.version);
      else if (stored !== undefined) this.#resealing(stored.version);
      // None stored (the first replica, or Redis restarted empty): this replica's set becomes the fleet's.
      else if (sharing) this.#version = undefined;
      this.#epoch ??= now;
      const wanted = this.#wanted(now);
      const missing = wanted.filter((n) => !this.#keys.has(n));
      // Keys made while Redis was away go to the fleet when it is back, unless the fleet moved on meanwhile (adopted above).
      const unpublished = sharing && (stored === undefined || this.#madeAlone);
      if (missing.length === 0 && !unpublished) break;
      const keys = new Map([...this.#keys].filter(([n]) => n >= wanted[0]!));
      for (const n of missing) keys.set(n, await newKey(n, this.#settings.algorithm, now));
      const written = sharing ? await this.#writeShared(this.#document(this.#epoch, keys)) : 'unshared';
      if (written !== 'conflict') {
        this.#keys = keys;
        this.#madeAlone = this.#shared !== undefined && written === 'unshared';
        break;
      }
      // Another replica wrote first: the next round reads its keys and adopts them.
    }
    this.#report(Date.now());
  }

  /**
   * The fleet's set is sealed under another cache.encryptionKey: this replica writes the keys it
   * holds (adopted from that very set before the key rotated) under its own key, over that version.
   */
  #resealing(version: number): void {
    if (this.#version !== version)
      this.#log.warn(
        { event: 'managed_keys_resealed', connection: this.#connection },
        `the shared managed keys of ${this.#connection} are sealed under another cache.encryptionKey; writing them under this one`,
      );
    this.#version = version;
    this.#madeAlone = true;
  }

  async #readShared(): Promise<{ version: number; text: string | undefined } | undefined> {
    if (this.#shared === undefined) return undefined;
    try {
      const stored = await this.#shared.read(this.#name);
      if (this.#sharedDown) this.#log.info({ event: 'managed_keys_shared', connection: this.#connection }, 'managed keys shared again');
      this.#sharedDown = false;
      return stored;
    } catch (error) {
      this.#sharedUnavailable(error);
      return undefined;
    }
  }

  async #writeShared(text: string): Promise<'written' | 'conflict' | 'unshared'> {
    try {
      const { rotateEveryMs, overlapMs } = this.#settings;
      const ok = await this.#shared!.write(this.#name, this.#version, text, 3 * (rotateEveryMs + overlapMs));
      if (!ok) return 'conflict';
      this.#version = (this.#version ?? 0) + 1;
      return 'written';
    } catch (error) {
      this.#sharedUnavailable(error);
      return 'unshared';
    }
  }

  #sharedUnavailable(error: unknown): void {
    if (this.#sharedDown) return;
    this.#sharedDown = true;
    this.#log.warn(
      { event: 'managed_keys_unshared', connection: this.#connection, error: (error as Error).message },
      `cannot reach the shared store for the managed keys of ${this.#connection}: this replica uses its own keys until it is back`,
    );
  }

  #document(epoch: number, keys: Map<number, RingKey>): string {
    const document: KeySetDocument = {
      epoch,
      keys: [...keys.values()].map((key) => ({ n: key.n, createdAt: key.createdAt, jwk: key.privateKey.export({ format: 'jwk' }) })),
    };
    return JSON.stringify(document);
  }

  /** Takes the fleet's document (what Redis holds is decrypted, but still checked: it is input). */
  async #adopt(text: string, version: number): Promise<void> {
    if (version === this.#version) return;
    let document: KeySetDocument;
    try {
      document = JSON.parse(text) as KeySetDocument;
      if (typeof document.epoch !== 'number' || !Array.isArray(document.keys)) throw new Error('malformed');
    } catch {
      this.#log.warn(
        { event: 'managed_keys_unreadable', connection: this.#connection },
        'the shared managed key set is unreadable; ignored',
      );
      return;
    }
    const keys = new Map<number, RingKey>();
    for (const entry of document.keys) {
      try {
        keys.set(
          entry.n,
          await ringKey(entry.n, createPrivateKey({ key: entry.jwk as never, format: 'jwk' }), entry.createdAt, this.#settings.algorithm),
        );
      } catch {
        // A key that does not import is left out; the schedule makes a new one when it is due.
      }
    }
    this.#epoch = document.epoch;
    this.#keys = keys;
    this.#version = version;
    this.#madeAlone = false;
  }

  /** Log lines for keys that entered or left the JWKS, and for the key that now signs. */
  #report(now: number): void {
    const published = new Set(this.jwks(now).map((jwk) => jwk.kid!));
    for (const key of this.#keys.values()) {
      if (!published.has(key.kid) || this.#published.has(key.kid)) continue;
      this.#log.info(
        {
          event: 'managed_key_published',
          connection: this.#connection,
          kid: key.kid,
          signsFrom: new Date(Math.max(this.#publishAt(key.n), this.#epoch! + key.n * this.#settings.rotateEveryMs)).toISOString(),
        },
        `managed key ${key.kid} of ${this.#connection} is in the JWKS`,
      );
    }
    for (const kid of this.#published) {
      if (!published.has(kid))
        this.#log.info(
          { event: 'managed_key_retired', connection: this.#connection, kid },
          `managed key ${kid} of ${this.#connection} left the JWKS`,
        );
    }
    this.#published = published;
    const signing = this.#current(now)?.kid;
    if (signing !== undefined && signing !== this.#signing) {
      this.#log.info(
        { event: 'managed_key_signing', connection: this.#connection, kid: signing },
        `managed key ${signing} of ${this.#connection} signs now`,
      );
      this.#signing = signing;
    }
  }

  /** The next moment the schedule changes something: a key to publish, to start signing or to retire. */
  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#closed || this.#epoch === undefined) return;
    const now = Date.now();
    const { rotateEveryMs: r } = this.#settings;
    const wanted = this.#wanted(now);
    const next = Math.min(
      this.#publishAt(wanted[wanted.length - 1]! + 1),
      this.#epoch + (this.#signingIndex(now) + 1) * r,
      this.#retireAt(wanted[0]!),
    );
    // A key that came due while a sync was under way (its timer found that sync and was spent on it) is made now.
    const due = wanted.some((n) => !this.#keys.has(n));
    const delay = this.#sharedDown ? RETRY_SYNC_MS : due ? 1 : Math.min(MAX_TIMER_STEP_MS, Math.max(1, next - now));
    this.#timer = setTimeout(() => void this.sync().catch((error: unknown) => this.#failed(error)), delay);
    this.#timer.unref();
  }

  #failed(error: unknown): void {
    this.#log.error(
      { event: 'managed_keys_error', connection: this.#connection, err: error },
      `managed keys of ${this.#connection}: sync failed`,
    );
  }
}

/** The name of a key set: the connection's authorization server and client, and the settings (a change starts a new set). */
function keySetName(connection: Connection, settings: ManagedKeySettings): string {
  const text = JSON.stringify([connection.identity, settings.algorithm, settings.rotateEveryMs, settings.overlapMs]);
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

export interface ManagedKeysOptions {
  log: Logger;
}

/**
 * Every managed connection's key ring, kept across reloads while a connection's authorization
 * server, client and key settings stay the same.
 */
export class ManagedKeys {
  readonly #rings = new Map<string, { name: string; ring: KeyRing }>();
  readonly #log: Logger;
  /** The fleet's shared store (cache.store: redis); undefined: every process has its own keys. */
  #shared: SharedKeySets | undefined;

  constructor(options: ManagedKeysOptions) {
    this.#log = options.log;
  }

  /** Set once at start, before the first update (the store is part of the start-only cache settings). */
  setShared(shared: SharedKeySets): void {
    this.#shared = shared;
  }

  /** Follows the connections of a (re)loaded config; resolves once every ring has its first keys. */
  async update(connections: Iterable<Connection>): Promise<void> {
    const wanted = new Map<string, { name: string; settings: ManagedKeySettings }>();
    for (const connection of connections) {
      const { credentials } = connection;
      if (credentials.kind === 'managedKeyJwt')
        wanted.set(connection.key, { name: keySetName(connection, credentials.managed), settings: credentials.managed });
    }
    for (const [key, entry] of this.#rings) {
      if (wanted.get(key)?.name === entry.name) continue;
      entry.ring.close();
      this.#rings.delete(key);
    }
    const started: Promise<void>[] = [];
    for (const [key, { name, settings }] of wanted) {
      if (this.#rings.has(key)) continue;
      const ring = new KeyRing(key, settings, name, this.#shared, this.#log);
      this.#rings.set(key, { name, ring });
      started.push(ring.sync());
    }
    await Promise.all(started);
  }

  /** What connection `key` signs with now. */
  signingKey(key: string): Promise<AssertionKey> {
    const ring = this.#rings.get(key)?.ring;
    if (ring === undefined) {
      return Promise.reject(
        new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'credentials_unavailable', {
          detail: `no managed keys for ${key}: they are made by a running gateway (tokengate serve)`,
          retryAfter: 1,
        }),
      );
    }
    return ring.signingKey();
  }

  /** The JWKS of connection `key` and its max-age; undefined when it has no managed keys. */
  jwks(key: string): { keys: JWK[]; maxAgeSeconds: number } | undefined {
    const ring = this.#rings.get(key)?.ring;
    return ring === undefined ? undefined : { keys: ring.jwks(), maxAgeSeconds: ring.maxAgeSeconds };
  }

  summary(key: string): ManagedKeySummary[] | undefined {
    return this.#rings.get(key)?.ring.summary();
  }

  close(): void {
    for (const { ring } of this.#rings.values()) ring.close();
    this.#rings.clear();
  }
}
