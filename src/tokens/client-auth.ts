/**
 * Client authentication strategies (RFC 6749 §2.3, RFC 7523 §2.2, OIDC Core §9). Each strategy is
 * built and validated once, when the config loads; the token client only calls `apply` and never
 * switches on the method per request.
 */
import { X509Certificate, createHash, createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Secret } from '../config/secret.js';
import { keyPairProblem, type TlsKeyPair } from '../config/tls.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** OIDC Core §9 leaves the lifetime to us; short keeps a leaked assertion nearly useless. */
export const ASSERTION_LIFETIME_S = 60;

export interface ClientAuthContext {
  /** The token endpoint this request goes to (the default assertion audience). */
  tokenEndpoint: string;
  /** The authorization server's issuer identifier, when known (configured or discovered). */
  issuer: string | undefined;
}

export interface ClientAuth {
  readonly method: string;
  /** The certificate and key the connection presents in the TLS handshake (mutual TLS only). */
  readonly tlsCredentials?: TlsKeyPair;
  /** Adds the client's credentials to a token request's form body and headers. */
  apply(body: URLSearchParams, headers: Record<string, string>, context: ClientAuthContext): void | Promise<void>;
}

/** A problem with the credentials found while building a strategy; the loader adds the key path. */
export class CredentialProblem extends Error {
  constructor(
    readonly path: string,
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

export type AudienceMode = 'token-endpoint' | 'issuer' | string;

interface AssertionOptions {
  clientId: string;
  key: KeyObject | Uint8Array;
  algorithm: string;
  audience: AudienceMode;
  header: Record<string, string>;
}

/** A fresh assertion for every attempt, retries included: new `jti`, new `iat`/`exp`. */
function jwtAssertion(method: string, options: AssertionOptions): ClientAuth {
  const { clientId, key, algorithm, audience, header } = options;
  return {
    method,
    async apply(body, _headers, context) {
      const aud =
        audience === 'token-endpoint' ? context.tokenEndpoint : audience === 'issuer' ? (context.issuer ?? context.tokenEndpoint) : audience;
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

/** HMAC keys shorter than the hash output are weak (RFC 7518 §3.2); jose enforces nothing here. */
const HMAC_MIN_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 };

export function clientSecretJwt(clientId: string, secret: Secret, algorithm: 'HS256' | 'HS384' | 'HS512', audience: AudienceMode, path: string): ClientAuth {
  const key = new TextEncoder().encode(secret.reveal());
  const min = HMAC_MIN_BYTES[algorithm] ?? 32;
  if (key.byteLength < min) {
    throw new CredentialProblem(`${path}.secret`, `${algorithm} needs a client secret of at least ${min} bytes (RFC 7518 §3.2); this one has ${key.byteLength}`);
  }
  return jwtAssertion('client_secret_jwt', { clientId, key, algorithm, audience, header: {} });
}

const CURVE_ALGORITHM: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

/** Which JWS algorithms a key can sign with; checked at load so a mismatch is a config error, not a 502. */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const alg = CURVE_ALGORITHM[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return alg === undefined ? [] : [alg];
    }
    case 'ed25519':
      return ['EdDSA'];
    default:
      return [];
  }
}

export function parsePrivateKey(text: string, format: 'pem' | 'jwk' | undefined, path: string): KeyObject {
  const detected = format ?? (text.trimStart().startsWith('{') ? 'jwk' : 'pem');
  try {
    if (detected === 'jwk') {
      const jwk = JSON.parse(text) as Record<string, unknown>;
      if (typeof jwk.d !== 'string') throw new Error('the JWK has no private part ("d")');
      return createPrivateKey({ key: jwk as never, format: 'jwk' });
    }
    if (!text.includes('-----BEGIN')) throw new Error('not a PEM document (no -----BEGIN line)');
    if (text.includes('ENCRYPTED')) throw new Error('encrypted PEM keys are not supported; store the key unencrypted in a protected secret');
    return createPrivateKey({ key: text, format: 'pem' });
  } catch (error) {
    throw new CredentialProblem(path, `cannot read the private key as ${detected.toUpperCase()}: ${(error as Error).message}`);
  }
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
  path: string;
}

export function privateKeyJwt(options: PrivateKeyJwtOptions): ClientAuth {
  const { path } = options;
  const key = parsePrivateKey(options.key.reveal(), options.format, `${path}.secret`);
  const supported = algorithmsFor(key);
  if (!supported.includes(options.algorithm)) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const kind = `${key.asymmetricKeyType ?? 'unknown'}${curve === undefined ? '' : ` (${curve})`}`;
    throw new CredentialProblem(
      `${path}.algorithm`,
      `${options.algorithm} cannot be used with a ${kind} key; ${supported.length === 0 ? 'this key type is not supported' : `use ${supported.join(', ')}`}`,
    );
  }
  const modulus = key.asymmetricKeyDetails?.modulusLength;
  if (modulus !== undefined && modulus < 2048) {
    throw new CredentialProblem(`${path}.secret`, `RSA keys must be at least 2048 bits; this one has ${modulus}`);
  }
  const header: Record<string, string> = {};
  if (options.keyId !== undefined) header.kid = options.keyId;
  if (options.certificate !== undefined) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(options.certificate.reveal());
    } catch (error) {
      throw new CredentialProblem(`${path}.certificate`, `cannot read the certificate as PEM X.509: ${(error as Error).message}`);
    }
    const certKey = cert.publicKey.export({ type: 'spki', format: 'der' });
    const ownKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
    if (!certKey.equals(ownKey)) {
      throw new CredentialProblem(`${path}.certificate`, "the certificate's public key does not match the private key");
    }
    // RFC 7515 §4.1.8 / §4.1.7: thumbprints of the DER certificate, base64url.
    header['x5t#S256'] = createHash('sha256').update(cert.raw).digest('base64url');
    if (options.thumbprint === 'sha1') header.x5t = createHash('sha1').update(cert.raw).digest('base64url');
  }
  return jwtAssertion('private_key_jwt', {
    clientId: options.clientId,
    key,
    algorithm: options.algorithm,
    audience: options.audience,
    header,
  });
}

export interface TlsClientAuthOptions {
  clientId: string;
  method: 'tls_client_auth' | 'self_signed_tls_client_auth';
  credentials: TlsKeyPair;
  path: string;
}

/**
 * RFC 8705 §2: the client proves itself with its certificate in the TLS handshake, so the form
 * carries no secret; client_id is REQUIRED there to say which client the certificate is for.
 */
export function tlsClientAuth(options: TlsClientAuthOptions): ClientAuth {
  const problem = keyPairProblem(options.credentials);
  if (problem !== undefined) throw new CredentialProblem(`${options.path}.${problem.field}`, problem.message);
  const { clientId } = options;
  return {
    method: options.method,
    tlsCredentials: options.credentials,
    apply(body) {
      body.set('client_id', clientId);
    },
  };
}
