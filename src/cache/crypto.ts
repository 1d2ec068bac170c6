/**
 * Tokens at rest in the shared cache: AES-256-GCM (NIST SP 800-38D) under a key from a secret, or
 * JSON when the config explicitly allows plaintext. Every entry names its key (a key id), so after a
 * rotation a replica reads entries written under another key as misses instead of failing.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { isInjectableToken } from '../tokens/endpoint.js';
import type { CachedToken } from '../tokens/types.js';

export const ENCRYPTION_KEY_BYTES = 32;
/** SP 800-38D §8.2: a 96-bit random IV per message. */
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_BYTES = 4;
const ENCRYPTED = 'v1';
const PLAINTEXT = 'p1';

/**
 * The 32-byte key from its text: 64 hex digits, or base64 / base64url of 32 bytes. Undefined when
 * the text is neither (the config loader reports that with the key path).
 */
export function decodeEncryptionKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (!/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(trimmed)) return undefined;
  const key = Buffer.from(trimmed, 'base64');
  return key.length === ENCRYPTION_KEY_BYTES ? key : undefined;
}

/**
 * A short, public fingerprint of an access token: the left half of its SHA-256, as OpenID Connect
 * Core §3.1.3.6 does for `at_hash`. It lets an invalidation delete the shared entry only when that
 * entry still holds the revoked token, whichever key encrypted it.
 */
export function tokenFingerprint(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url');
}

/** Turns a token into the string stored under one Redis key, and back. */
export interface TokenCodec {
  encode(token: CachedToken, redisKey: string): string;
  /** Undefined for anything this codec cannot read: another key, the other mode, a damaged value. */
  decode(value: string, redisKey: string): CachedToken | undefined;
}

/** Told about values that name this codec's key (or mode) but fail to decrypt or parse. */
export type CorruptValueListener = () => void;

interface StoredToken {
  a: string;
  s: string | null;
  o: number;
  e: number;
  u: number;
  /** null when refresh ahead is off (Infinity does not survive JSON). */
  r: number | null;
}

function serialize(token: CachedToken): string {
  const stored: StoredToken = {
    a: token.accessToken,
    s: token.scope ?? null,
    o: token.obtainedAt,
    e: token.expiresAt,
    u: token.usableUntil,
    r: Number.isFinite(token.refreshAt) ? token.refreshAt : null,
  };
  return JSON.stringify(stored);
}

function deserialize(text: string): CachedToken | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const stored = value as Partial<StoredToken> | null;
  if (typeof stored !== 'object' || stored === null) return undefined;
  const { a, s, o, e, u, r } = stored;
  // Whoever can write to Redis must not be able to make every replica throw on injection.
  if (!isInjectableToken(a) || (s !== null && typeof s !== 'string')) return undefined;
  if (![o, e, u].every((n) => typeof n === 'number' && Number.isFinite(n)) || (r !== null && typeof r !== 'number')) return undefined;
  return Object.freeze({
    accessToken: a,
    scope: s ?? undefined,
    obtainedAt: o!,
    expiresAt: e!,
    usableUntil: u!,
    refreshAt: r ?? Number.POSITIVE_INFINITY,
  });
}

/** Why a sealed value names this key but does not open: damaged, or sealed under another `aad`. */
export class SealBroken extends Error {}

/**
 * `v1.<key id>.<iv>.<ciphertext>.<tag>` (base64url), AES-256-GCM with `aad` as additional
 * authenticated data: the Redis key the value is stored under, so a value copied under another key
 * (another connection or scope) does not open. Shared by token entries and managed key sets.
 */
export function sealText(key: Buffer, text: string, aad: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ciphertext = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return [
    ENCRYPTED,
    keyIdOf(key),
    iv.toString('base64url'),
    ciphertext.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
  ].join('.');
}

/**
 * The text of a sealText value; undefined when it was sealed under another key (a rotation in
 * progress) or not sealed at all; a SealBroken when it names this key but does not open.
 */
export function openText(key: Buffer, value: string, aad: string): string | undefined {
  const [version, id, iv, ciphertext, tag, extra] = value.split('.');
  if (version !== ENCRYPTED || id !== keyIdOf(key)) return undefined;
  try {
    if (iv === undefined || ciphertext === undefined || tag === undefined || extra !== undefined) throw new Error('malformed');
    const tagBytes = Buffer.from(tag, 'base64url');
    if (tagBytes.length !== TAG_BYTES) throw new Error('malformed');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(tagBytes);
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  } catch (error) {
    throw new SealBroken('the value does not decrypt', { cause: error });
  }
}

function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

/** Token entries sealed with sealText; the Redis key is the additional authenticated data. */
export function encryptedCodec(key: Buffer, onCorrupt: CorruptValueListener): TokenCodec {
  return {
    encode: (token, redisKey) => sealText(key, serialize(token), redisKey),
    decode(value, redisKey) {
      try {
        // Another key (a rotation in progress) or a plaintext entry: a miss, not a fault.
        const text = openText(key, value, redisKey);
        if (text === undefined) return undefined;
        const token = deserialize(text);
        if (token === undefined) throw new Error('malformed');
        return token;
      } catch {
        onCorrupt();
        return undefined;
      }
    },
  };
}

/** `p1.<json>`: only with `allowPlaintext: true`. */
export function plaintextCodec(onCorrupt: CorruptValueListener): TokenCodec {
  const prefix = `${PLAINTEXT}.`;
  return {
    encode: (token) => prefix + serialize(token),
    decode(value) {
      if (!value.startsWith(prefix)) return undefined;
      const token = deserialize(value.slice(prefix.length));
      if (token === undefined) onCorrupt();
      return token;
    },
  };
}
