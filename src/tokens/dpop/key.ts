/**
 * The key a connection's DPoP proofs are signed with (RFC 9449 §4.2): read from a secret (PEM or
 * JWK) or generated for the life of the process, checked against its algorithm when the config
 * loads, and prepared once — public JWK, thumbprint, encoded JOSE header and signing options — so
 * that a proof per request costs one signature and nothing else.
 */
import { constants, createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import type { Secret } from '../../config/secret.js';
import type { DPOP_ALGORITHMS } from '../../config/schema-connection.js';
import { CredentialProblem, describeKey, parsePrivateKey } from '../client-auth.js';

/** RFC 9449 §4.2: asymmetric algorithms only, never `none` or HMAC (the list is the config schema's). */
export type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number];
/** NIST SP 800-57: RSA below 2048 bits is no longer acceptable for signatures. */
export const MIN_RSA_BITS = 2048;

/** A key or algorithm problem found at config load; `field` is the key under `connections.KEY.dpop`. */
export class DpopKeyProblem extends Error {
  constructor(
    readonly field: 'key' | 'algorithm',
    message: string,
  ) {
    super(message);
  }
}

/** RFC 7518 §3.4: one curve per ECDSA algorithm (node's curve names). */
const EC_ALGORITHMS: Record<string, DpopAlgorithm> = { prime256v1: 'ES256', secp384r1: 'ES384' };
const RSA_ALGORITHMS: readonly DpopAlgorithm[] = ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'];
const HASHES: Record<DpopAlgorithm, string | null> = {
  ES256: 'sha256',
  ES384: 'sha384',
  EdDSA: null,
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512',
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
};

/** The algorithms this key can sign with, the first being the one used when the config names none. */
function algorithmsFor(key: KeyObject): readonly DpopAlgorithm[] {
  if (key.asymmetricKeyType === 'rsa') return RSA_ALGORITHMS;
  if (key.asymmetricKeyType === 'ed25519') return ['EdDSA'];
  const curve = key.asymmetricKeyType === 'ec' ? EC_ALGORITHMS[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
  return curve === undefined ? [] : [curve];
}

/** RFC 7638 §3.2: only the required members, in lexicographic order, no whitespace. */
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
};

export type PublicJwk = Readonly<Record<string, string>>;

/**
 * A prepared DPoP key. Nothing here reveals the private key: it prints as its algorithm and
 * thumbprint, and only `sign` uses it.
 */
export class DpopKey {
  readonly algorithm: DpopAlgorithm;
  /** RFC 7638 SHA-256 thumbprint of the public key, base64url: the token's `cnf.jkt` (RFC 9449 §6.1). */
  readonly thumbprint: string;
  /** The public key with only the members RFC 7638 requires (no `d`, no `kid`, no `alg`). */
  readonly publicJwk: PublicJwk;
  /** base64url of the proof's JOSE header (RFC 9449 §4.2: typ, alg, jwk), encoded once per key. */
  readonly encodedHeader: string;
  readonly #hash: string | null;
  readonly #options: SignKeyObjectInput;

  constructor(privateKey: KeyObject, algorithm: DpopAlgorithm) {
    this.algorithm = algorithm;
    const exported = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, unknown>;
    const members = THUMBPRINT_MEMBERS[String(exported.kty)] ?? [];
    this.publicJwk = Object.freeze(Object.fromEntries(members.map((name) => [name, String(exported[name])])));
    this.thumbprint = createHash('sha256').update(JSON.stringify(this.publicJwk)).digest('base64url');
    this.encodedHeader = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: algorithm, jwk: this.publicJwk })).toString('base64url');
    this.#hash = HASHES[algorithm];
    // RFC 7518 §3.4: ECDSA signatures are R || S, not DER; §3.5: PSS with the salt as long as the hash.
    this.#options = algorithm.startsWith('ES')
      ? { key: privateKey, dsaEncoding: 'ieee-p1363' }
      : algorithm.startsWith('PS')
        ? { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
        : { key: privateKey };
  }

  /** The base64url JWS signature of `signingInput` (RFC 7515 §5.1). */
  sign(signingInput: string): string {
    return sign(this.#hash, Buffer.from(signingInput), this.#options).toString('base64url');
  }

  toJSON(): Record<string, string> {
    return { algorithm: this.algorithm, thumbprint: this.thumbprint };
  }
}

/** Generated keys live as long as the process, so a reload does not unbind the tokens already cached. */
const generated = new Map<string, KeyObject>();

export interface DpopKeyOptions {
  /** The connection's key: a generated key is kept per connection. */
  readonly connection: string;
  /** The secret holding the private key; undefined to use a generated P-256 key. */
  readonly secret: Secret | undefined;
  readonly algorithm: DpopAlgorithm | undefined;
}

/** Reads (or generates) and checks a DPoP key; a DpopKeyProblem names what is wrong and where. */
export function loadDpopKey(options: DpopKeyOptions): DpopKey {
  let key: KeyObject;
  if (options.secret === undefined) {
    key = generated.get(options.connection) ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    generated.set(options.connection, key);
  } else {
    try {
      key = parsePrivateKey(options.secret.reveal(), undefined);
    } catch (error) {
      if (error instanceof CredentialProblem) throw new DpopKeyProblem('key', error.message);
      throw error;
    }
  }
  const supported = algorithmsFor(key);
  if (supported.length === 0) {
    throw new DpopKeyProblem('key', `${describeKey(key)} keys cannot sign DPoP proofs; use an EC P-256/P-384, Ed25519 or RSA key`);
  }
  const modulus = key.asymmetricKeyDetails?.modulusLength;
  if (modulus !== undefined && modulus < MIN_RSA_BITS) {
    throw new DpopKeyProblem('key', `RSA keys must be at least ${MIN_RSA_BITS} bits; this one has ${modulus}`);
  }
  const algorithm = options.algorithm ?? supported[0]!;
  if (!supported.includes(algorithm)) {
    const which = options.secret === undefined ? 'the generated EC P-256' : `this ${describeKey(key)}`;
    throw new DpopKeyProblem('algorithm', `${algorithm} cannot be used with ${which} key; use ${supported.join(', ')}`);
  }
  return new DpopKey(key, algorithm);
}
