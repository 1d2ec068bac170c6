/**
 * The in-process token cache: a hit never leaves the process. Entries live until their usable
 * end (node-cache's TTL), and a token is only ever replaced whole (tokens are frozen values).
 */
import NodeCache from 'node-cache';
import type { CachedToken } from './types.js';

/** The connection part of a token key id (`connection\0params`). */
export const connectionOf = (id: string): string => id.slice(0, id.indexOf('\u0000'));

export class LocalTokenCache {
  // node-cache clones values by default; tokens are immutable, so cloning is pure waste.
  readonly #cache = new NodeCache({ useClones: false, checkperiod: 60, deleteOnExpire: true });

  get(id: string): CachedToken | undefined {
    return this.#cache.get<CachedToken>(id);
  }

  /** Kept until its usable end; a token already past it is not kept at all. */
  set(id: string, token: CachedToken, now = Date.now()): void {
    const ttlSeconds = Math.ceil((token.usableUntil - now) / 1000);
    if (ttlSeconds > 0 && Number.isFinite(ttlSeconds)) this.#cache.set(id, token, ttlSeconds);
  }

  delete(id: string): void {
    this.#cache.del(id);
  }

  /** Drops `accessToken` if it is still the one cached under `id`. */
  deleteIfHolds(id: string, accessToken: string): void {
    if (this.get(id)?.accessToken === accessToken) this.#cache.del(id);
  }

  /** Drops every token of a connection (ids start with `connection\0`). */
  dropPrefix(prefix: string): void {
    for (const id of this.#cache.keys()) if (id.startsWith(prefix)) this.#cache.del(id);
  }

  /** Soonest expiry in seconds among each connection's cached tokens; only finite values. */
  expiries(now = Date.now()): Map<string, number> {
    const out = new Map<string, number>();
    for (const id of this.#cache.keys()) {
      const token = this.get(id);
      if (token === undefined) continue;
      const seconds = (token.expiresAt - now) / 1000;
      if (!Number.isFinite(seconds)) continue;
      const connection = connectionOf(id);
      const previous = out.get(connection);
      // At equal seconds `<=` would set the value it already holds.
      // Stryker disable next-line EqualityOperator: equivalent (above)
      if (previous === undefined || seconds < previous) out.set(connection, seconds);
    }
    return out;
  }

  close(): void {
    this.#cache.close();
  }
}
