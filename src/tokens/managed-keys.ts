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
import { createHash } from 'node:crypto';
import type { JWK } from 'jose';
import type { Connection, ManagedKeySettings } from '../config/types.js';
import { TokenError } from '../errors/gateway.js';
import type { Logger } from 'pino';
import type { AssertionKey } from './client-auth.js';
import { KeyRing, type ManagedKeySummary, type SharedKeySets } from './managed-keys/ring.js';

export type { ManagedKeySummary, SharedKeySets } from './managed-keys/ring.js';

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
