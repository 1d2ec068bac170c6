/**
 * Client authentication strategies (RFC 6749 §2.3, RFC 7523 §2.2, OIDC Core §9). Each strategy is
 * built and validated once, when the config loads; the token client only calls `apply` and never
 * switches on the method per request.
 */
import { X509Certificate, createHash, createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Secret } from '../config/secret.js';
import { keyPairProblem, type TlsKeyPair } from '../config/tls.js';
import type { ClientAuth } from '../config/types.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** OIDC Core §9 leaves the lifetime to us; short keeps a leaked assertion nearly useless. */
export const ASSERTION_LIFETIME_S = 60;

// The strategy's shape belongs to the config (a compiled connection carries one); it is re-exported here.
export type { ClientAuth, ClientAuthContext } from '../config/types.js';

/** Which field of a `clientSecret` / `privateKeyJwt` / `tlsClientAuth` block a credential problem is about. */
export type CredentialField = 'secret' | 'algorithm' | 'certificate' | 'key' | 'previous';

/**
 * A problem with the credentials found while building a strategy, so at config load and never as
 * a runtime 502; the loader turns it into a problem at the block's key path plus `field`.
 */
export class CredentialProblem extends Error {
  constructor(
    readonly field: CredentialField,
    message: string,
  ) {
    super(message);
  }
}

/** RFC 6749 §2.3.1 and Appendix B: id and secret are form-encoded before they are joined for Basic. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

export function clientSecretBasic(clientId: string, secret: Secret): ClientAuth {
  const header = `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(secret.reveal())}`).toString('base64')}`;
  return {
    method: 'client_secret_basic',
    apply(_body, headers) {
      headers.authorization = header;
    },
  };
}

export function clientSecretPost(clientId: string, secret: Secret): ClientAuth {
  return {
    method: 'client_secret_post',
    apply(body) {
      body.set('client_id', clientId);
      body.set('client_secret', secret.reveal());
    },
  };
}

/** `token-endpoint`, `issuer` (draft-ietf-oauth-rfc7523bis), or any other string taken literally. */
export type AudienceMode = 'token-endpoint' | 'issuer' | (string & {});

/** What an assertion is signed with: a configured key, a client secret, or a managed key of the moment. */
export interface AssertionKey {
  key: KeyObject | Uint8Array;
  algorithm: string;
  header: Record<string, string>;
}

/**
 * A fresh assertion for every attempt, retries included: new `jti`, new `iat`/`exp`. `signingKey`
 * is asked each time, so a managed connection signs with the key that signs now.
 */
function jwtAssertion(
  method: string,
  clientId: string,
  audience: AudienceMode,
  signingKey: () => AssertionKey | Promise<AssertionKey>,
): ClientAuth {
  return {
    method,
    async apply(body, _headers, context) {
      const { key, algorithm, header } = await signingKey();
      // The loader only accepts `audience: issuer` on a connection with an issuer, so it is known here.
      const aud = audience === 'token-endpoint' ? context.tokenEndpoint : audience === 'issuer' ? context.issuer! : audience;
      const now = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ ...header, alg: algorithm, typ: 'JWT' })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(aud)
        .setIssuedAt(now)
        .setExpirationTime(now + ASSERTION_LIFETIME_S)
        .sign(key);
      body.set('client_id', clientId);
      body.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      body.set('client_assertion', assertion);
    },
  };
}

/**
 * `privateKeyJwt.managed`: signed with whichever generated key signs at this moment
 * (src/tokens/managed-keys.ts); `kid` is the key's RFC 7638 thumbprint, as its JWKS names it.
 */
export function managedKeyJwt(clientId: string, audience: AudienceMode, signingKey: () => Promise<AssertionKey>): ClientAuth {
  return jwtAssertion('private_key_jwt', clientId, audience, signingKey);
}

/** HMAC keys shorter than the hash output are weak (RFC 7518 §3.2); jose enforces nothing here. */
const HMAC_MIN_BYTES = { HS256: 32, HS384: 48, HS512: 64 } as const;

export function clientSecretJwt(
  clientId: string,
  secret: Secret,
  algorithm: keyof typeof HMAC_MIN_BYTES,
  audience: AudienceMode,
): ClientAuth {
  const key = new TextEncoder().encode(secret.reveal());
  const min = HMAC_MIN_BYTES[algorithm];
  if (key.byteLength < min) {
    throw new CredentialProblem(
      'secret',
      `${algorithm} needs a client secret of at least ${min} bytes (RFC 7518 §3.2); this one has ${key.byteLength}`,
    );
  }
  const signing = { key, algorithm, header: {} };
  return jwtAssertion('client_secret_jwt', clientId, audience, () => signing);
}

/** RFC 7518 §3.4: each ECDSA algorithm has exactly one curve (node's names → JOSE's). */
const CURVES: Record<string, { name: string; algorithm: string }> = {
  prime256v1: { name: 'P-256', algorithm: 'ES256' },
  secp384r1: { name: 'P-384', algorithm: 'ES384' },
  secp521r1: { name: 'P-521', algorithm: 'ES512' },
};

/** Which JWS algorithms a key can sign with; checked at load so a mismatch is a config error, not a 502. */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return curve === undefined ? [] : [curve.algorithm];
    }
    case 'ed25519':
      return ['EdDSA'];
    default:
      return [];
  }
}

/** "RSA", "EC P-256", "Ed25519", or node's name for anything else ("EC secp256k1", "ed448"). */
export function describeKey(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? 'unknown';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown curve';
    return `EC ${CURVES[curve]?.name ?? curve}`;
  }
  const names: Record<string, string> = { rsa: 'RSA', ed25519: 'Ed25519' };
  return names[type] ?? type;
}

/** JSON.parse's own messages quote the input, which here is key material. */
function parseJwk(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('a JWK is a JSON object');
  return value as Record<string, unknown>;
}

/** A private key from PEM or JWK text; a CredentialProblem on `secret` when it cannot be read (also used for DPoP keys). */
export function parsePrivateKey(text: string, format: 'pem' | 'jwk' | undefined): KeyObject {
  const detected = format ?? (text.trimStart().startsWith('{') ? 'jwk' : 'pem');
  let key: KeyObject;
  try {
    if (detected === 'jwk') {
      const jwk = parseJwk(text);
      if (typeof jwk.d !== 'string') throw new Error('the JWK has no private part ("d")');
      key = createPrivateKey({ key: jwk as never, format: 'jwk' });
    } else {
      if (!text.includes('-----BEGIN')) throw new Error('not a PEM document (no -----BEGIN line)');
      // Both PKCS#8 (BEGIN ENCRYPTED PRIVATE KEY) and legacy PEM (Proc-Type: 4,ENCRYPTED) say so.
      if (text.includes('ENCRYPTED'))
        throw new Error('encrypted PEM keys are not supported; store the key unencrypted in a protected secret');
      key = createPrivateKey({ key: text, format: 'pem' });
    }
  } catch (error) {
    throw new CredentialProblem('secret', `cannot read the private key as ${detected.toUpperCase()}: ${(error as Error).message}`);
  }
  // An id-RSASSA-PSS key (RFC 4055) cannot be turned into a JWS signer by jose or WebCrypto, and
  // neither node nor openssl re-labels it; a plain rsaEncryption key signs PS256/384/512 fine.
  if (key.asymmetricKeyType === 'rsa-pss') {
    throw new CredentialProblem(
      'secret',
      'RSASSA-PSS-only keys (id-RSASSA-PSS) are not supported; ' +
        'use a plain RSA key (rsaEncryption, e.g. openssl genpkey -algorithm RSA), which signs PS256/PS384/PS512 too',
    );
  }
  return key;
}

export interface PrivateKeyJwtOptions {
  clientId: string;
  key: Secret;
  format: 'pem' | 'jwk' | undefined;
  keyId: string | undefined;
  algorithm: string;
  audience: AudienceMode;
  certificate: Secret | undefined;
  thumbprint: 'sha256' | 'sha1';
}

export function privateKeyJwt(options: PrivateKeyJwtOptions): ClientAuth {
  const key = parsePrivateKey(options.key.reveal(), options.format);
  const supported = algorithmsFor(key);
  if (!supported.includes(options.algorithm)) {
    const kind = describeKey(key);
    if (supported.length === 0)
      throw new CredentialProblem('secret', `${kind} keys are not supported; use an RSA, EC P-256/P-384/P-521 or Ed25519 key`);
    throw new CredentialProblem('algorithm', `${options.algorithm} cannot be used with this ${kind} key; use ${supported.join(', ')}`);
  }
  const modulus = key.asymmetricKeyDetails?.modulusLength;
  if (modulus !== undefined && modulus < 2048) {
    throw new CredentialProblem('secret', `RSA keys must be at least 2048 bits; this one has ${modulus}`);
  }
  const header: Record<string, string> = {};
  if (options.keyId !== undefined) header.kid = options.keyId;
  if (options.certificate !== undefined) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(options.certificate.reveal());
    } catch (error) {
      throw new CredentialProblem('certificate', `cannot read the certificate as PEM X.509: ${(error as Error).message}`);
    }
    const certKey = cert.publicKey.export({ type: 'spki', format: 'der' });
    const ownKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
    if (!certKey.equals(ownKey)) {
      throw new CredentialProblem('certificate', "the certificate's public key does not match the private key");
    }
    // RFC 7515 §4.1.8 / §4.1.7: thumbprints of the DER certificate, base64url.
    header['x5t#S256'] = createHash('sha256').update(cert.raw).digest('base64url');
    if (options.thumbprint === 'sha1') header.x5t = createHash('sha1').update(cert.raw).digest('base64url');
  }
  const signing = { key, algorithm: options.algorithm, header };
  return jwtAssertion('private_key_jwt', options.clientId, options.audience, () => signing);
}

export interface TlsClientAuthOptions {
  clientId: string;
  method: 'tls_client_auth' | 'self_signed_tls_client_auth';
  credentials: TlsKeyPair;
}

/**
 * RFC 8705 §2: the client proves itself with its certificate in the TLS handshake, so the form
 * carries no secret; client_id is REQUIRED there to say which client the certificate is for.
 */
export function tlsClientAuth(options: TlsClientAuthOptions): ClientAuth {
  const problem = keyPairProblem(options.credentials);
  if (problem !== undefined) throw new CredentialProblem(problem.field, problem.message);
  const { clientId } = options;
  return {
    method: options.method,
    tlsCredentials: options.credentials,
    apply(body) {
      body.set('client_id', clientId);
    },
  };
}

/**
 * `clientSecret.previous`: `auth` with the previous secret attached, built by the same method. A
 * previous secret the method refuses (too short for client_secret_jwt) is a problem at `previous`.
 */
export function withPrevious(auth: ClientAuth, build: () => ClientAuth): ClientAuth {
  let previous: ClientAuth;
  try {
    previous = build();
  } catch (error) {
    if (error instanceof CredentialProblem) throw new CredentialProblem('previous', error.message);
    throw error;
  }
  return { ...auth, method: auth.method, apply: auth.apply.bind(auth), previous };
}
