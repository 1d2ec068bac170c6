/**
 * A shared token entry as stored: `<fingerprint>:<codec value>`. The fingerprint in clear lets
 * INVALIDATE_SCRIPT delete exactly the revoked token; the codec (crypto.ts) seals the rest.
 */
import { createHash } from 'node:crypto';
import type { CachedToken } from '../tokens/types.js';
import { plausibleTimes } from '../tokens/lifetime.js';
import { tokenFingerprint, type TokenCodec } from './crypto.js';

/** The Redis keys of one shared token: the entry and the lease of whoever fetches it. */
export interface EntryNames {
  readonly entry: string;
  readonly lease: string;
}

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

/**
 * `id` (the local cache id) carries a DPoP key's thumbprint (tokenKey): replicas with another key
 * never share the entry. The {…} hash tag puts an entry and its lease in one Cluster slot: the
 * scripts touch both.
 */
export function entryNames(prefix: string, connectionIdentity: string, id: string): EntryNames {
  const suffix = `{${connectionIdentity}:${hash(id)}}`;
  return { entry: `${prefix}token:${suffix}`, lease: `${prefix}lease:${suffix}` };
}

/** The value to store for `token` under `entry` (the Redis key, bound into the seal). */
export function entryValue(codec: TokenCodec, token: CachedToken, entry: string): string {
  return `${tokenFingerprint(token.accessToken)}:${codec.encode(token, entry)}`;
}

/** The prefix of every value that holds `accessToken` (what INVALIDATE_SCRIPT compares). */
export const fingerprintPrefix = (accessToken: string): string => `${tokenFingerprint(accessToken)}:`;

/** The token in a stored value; undefined for one this replica cannot read (the codec reports why). */
export function entryToken(codec: TokenCodec, value: string, entry: string): CachedToken | undefined {
  return codec.decode(value.slice(value.indexOf(':') + 1), entry);
}

/**
 * The token's times re-based on Redis's remaining TTL (`ttlMs`): replicas' clocks differ, and
 * Redis's TTL is the one clock they share. Undefined when the times are impossible before or after
 * (whoever can write to Redis must not make a replica cache a token for ever, or break a gauge or
 * /usage).
 */
export function rebased(token: CachedToken, ttlMs: number, now: number): CachedToken | undefined {
  const shift = ttlMs > 0 ? now + ttlMs - token.usableUntil : 0;
  const moved: CachedToken = Object.freeze({
    ...token,
    obtainedAt: token.obtainedAt + shift,
    expiresAt: token.expiresAt + shift,
    usableUntil: token.usableUntil + shift,
    refreshAt: token.refreshAt + shift,
  });
  return plausibleTimes(token, token.obtainedAt) && plausibleTimes(moved, now) ? moved : undefined;
}
