/**
 * DPoP proofs (RFC 9449 §4): one fresh JWT per HTTP request, for the token endpoint and for every
 * upstream request. The key's header is encoded once (key.ts); per proof only the claims are
 * serialised and signed.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { DpopKey } from './key.js';
import { NonceStore } from './nonces.js';

/** RFC 9449 §4.2: `ath` is the base64url SHA-256 of the ASCII access token. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url');
}

/** What a connection with `dpop:` signs with: its key, and the nonces the servers it talks to handed out. */
export class DpopSigner {
  readonly key: DpopKey;
  readonly nonces: NonceStore;

  constructor(key: DpopKey, nonces = new NonceStore()) {
    this.key = key;
    this.nonces = nonces;
  }

  get algorithm(): string {
    return this.key.algorithm;
  }

  get thumbprint(): string {
    return this.key.thumbprint;
  }

  /**
   * A proof for `htm` to `origin` + `path` (path without query or fragment), with `ath` when it
   * goes with an access token, and the origin's nonce once that server gave one (RFC 9449 §8, §9).
   */
  proof(htm: string, origin: string, path: string, ath?: string): string {
    const nonce = this.nonces.get(origin);
    const claims: Record<string, string | number> = {
      // RFC 9449 §4.2: enough entropy that a jti never repeats (at least 96 random bits). A v4 UUID has 122
      // random bits, and node hands them out from a pre-filled pool: a per-call randomBytes() showed
      // up in the gateway's profile.
      jti: randomUUID(),
      htm,
      htu: origin + path,
      iat: Math.floor(Date.now() / 1000),
    };
    if (ath !== undefined) claims.ath = ath;
    if (nonce !== undefined) claims.nonce = nonce;
    const input = `${this.key.encodedHeader}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${this.key.sign(input)}`;
  }

  toJSON(): Record<string, string> {
    return this.key.toJSON();
  }
}
