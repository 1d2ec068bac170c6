/**
 * Managed signing key sets shared by a fleet (tokens/managed-keys.ts) in the Redis of the shared
 * token cache, on its connection and under its time-outs. Each set is one value,
 * `<version>:<sealed document>`: the document holds private keys, so it is always encrypted with
 * cache.encryptionKey (the config refuses managed keys on Redis without one), bound to its Redis
 * key. The version in clear lets a replica write with compare-and-set.
 */
import type { SharedKeySets } from '../tokens/managed-keys.js';
import { openText, sealText } from './crypto.js';
import { CacheStoreError } from './store-errors.js';
import type { RedisTokenStore } from './redis-store.js';

/** Write `ARGV[2]` as version ARGV[1]+1 only if the stored version is still ARGV[1] ('' for none). */
const WRITE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
local version = current and string.match(current, '^(%d+):') or ''
if version ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

const READ_SCRIPT = `return redis.call('GET', KEYS[1])`;

/**
 * The shared key sets under the store's current cache.encryptionKey. A set sealed under another key
 * (the key was rotated on reload) reads as unreadable, with its version, so that a replica re-seals
 * the keys it holds under its own key instead of forking the set.
 */
export function redisKeySets(store: RedisTokenStore): SharedKeySets {
  const name = (set: string) => `keys:${set}`;
  const key = (): Buffer => {
    const current = store.encryptionKey;
    // The config refuses managed keys on Redis without cache.encryptionKey.
    if (current === undefined) throw new Error('managed keys in Redis need cache.encryptionKey');
    return current;
  };
  return {
    async read(set) {
      const value = await store.runScript(READ_SCRIPT, [name(set)], []);
      if (value === null) return undefined;
      const match = typeof value === 'string' ? /^(\d+):(.*)$/s.exec(value) : null;
      if (match === null) throw new CacheStoreError('CACHE_ENTRY_UNREADABLE', 'the shared key set is not a versioned value');
      return { version: Number(match[1]), text: openText(key(), match[2]!, store.redisKey(name(set))) };
    },
    async write(set, expected, text, ttlMs) {
      const next = (expected ?? 0) + 1;
      const value = `${next}:${sealText(key(), text, store.redisKey(name(set)))}`;
      const reply = await store.runScript(
        WRITE_SCRIPT,
        [name(set)],
        [expected === undefined ? '' : String(expected), value, Math.floor(ttlMs)],
      );
      return reply === 1;
    },
  };
}
