/**
 * One connection's managed keys (managed-keys.ts): kept to the schedule (schedule.ts), shared with
 * the fleet through compare-and-set on one document when there is a shared store, and told to the
 * log as keys are published, start signing and retire.
 */
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import type { ManagedKeySettings } from '../../config/types.js';
import { TokenError } from '../../errors/gateway.js';
import type { AssertionKey } from '../client-auth.js';
import { newKey, readKeySet, writeKeySet, type RingKey } from './keys.js';
import { KeySchedule } from './schedule.js';

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

/** One key as /connections and the console show it: public facts only. */
export interface ManagedKeySummary {
  readonly kid: string;
  readonly state: 'next' | 'signing' | 'previous';
  readonly createdAt: string;
  readonly ageSeconds: number;
}

/** One connection's keys and their schedule. */
export class KeyRing {
  readonly #connection: string;
  readonly #settings: ManagedKeySettings;
  readonly #name: string;
  readonly #shared: SharedKeySets | undefined;
  readonly #log: Logger;
  /** Undefined until the first sync: the set's epoch is when it is first made (or the fleet's, adopted). */
  #plan: KeySchedule | undefined;
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
    return this.#live(now).map((key) => key.publicJwk);
  }

  /** `Cache-Control: max-age` of the JWKS: half the overlap, so a server that honours it sees a new key in time. */
  get maxAgeSeconds(): number {
    return Math.floor(this.#settings.overlapMs / 2000);
  }

  summary(now = Date.now()): ManagedKeySummary[] {
    const signing = this.#plan?.signingIndex(now) ?? -1;
    return this.#live(now)
      .sort((a, b) => b.n - a.n)
      .map((key) => ({
        kid: key.kid,
        state: key.n > signing ? 'next' : key.n === signing ? 'signing' : 'previous',
        createdAt: new Date(key.createdAt).toISOString(),
        ageSeconds: Math.max(0, Math.floor((now - key.createdAt) / 1000)),
      }));
  }

  #current(now = Date.now()): RingKey | undefined {
    return this.#plan === undefined ? undefined : this.#keys.get(this.#plan.signingIndex(now));
  }

  /** The keys not yet retired at `now`. */
  #live(now: number): RingKey[] {
    const plan = this.#plan;
    return plan === undefined ? [] : [...this.#keys.values()].filter((key) => now < plan.retireAt(key.n));
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
      this.#plan ??= new KeySchedule(now, this.#settings);
      const wanted = this.#plan.wanted(now);
      const missing = wanted.filter((n) => !this.#keys.has(n));
      // Keys made while Redis was away go to the fleet when it is back, unless the fleet moved on meanwhile (adopted above).
      const unpublished = sharing && (stored === undefined || this.#madeAlone);
      if (missing.length === 0 && !unpublished) break;
      const keys = new Map([...this.#keys].filter(([n]) => n >= wanted[0]!));
      for (const n of missing) keys.set(n, await newKey(n, this.#settings.algorithm, now));
      const written = sharing ? await this.#writeShared(writeKeySet(this.#plan.epoch, keys)) : 'unshared';
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

  /** Takes the fleet's document. */
  async #adopt(text: string, version: number): Promise<void> {
    if (version === this.#version) return;
    const set = await readKeySet(text, this.#settings.algorithm);
    if (set === undefined) {
      this.#log.warn(
        { event: 'managed_keys_unreadable', connection: this.#connection },
        'the shared managed key set is unreadable; ignored',
      );
      return;
    }
    this.#plan = new KeySchedule(set.epoch, this.#settings);
    this.#keys = set.keys;
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
          signsFrom: new Date(this.#plan!.signsFrom(key.n)).toISOString(),
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
    const plan = this.#plan;
    if (this.#closed || plan === undefined) return;
    const now = Date.now();
    // A key that came due while a sync was under way (its timer found that sync and was spent on it) is made now.
    const due = plan.wanted(now).some((n) => !this.#keys.has(n));
    const delay = this.#sharedDown ? RETRY_SYNC_MS : due ? 1 : Math.min(MAX_TIMER_STEP_MS, Math.max(1, plan.nextChange(now) - now));
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
