/** A connection's part of the config schema: the authorization server, client authentication, DPoP, time-outs and retries. */
import { z } from 'zod';
import {
  duration,
  httpUrl,
  MAX_TIMER_S,
  name,
  paramsSchema,
  positiveMs,
  secretRef,
  timerSeconds,
  tlsVerifySchema,
} from './schema-values.js';

export const DEFAULT_TOKEN_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_TOKEN_TIMEOUT_MS = 10_000;
export const DEFAULT_TOKEN_MAX_ATTEMPTS = 3;
export const DEFAULT_TOKEN_BUDGET_MS = 15_000;
export const DEFAULT_RETRY_AFTER_CAP_MS = 5_000;
export const DEFAULT_EXPIRY_SKEW_S = 30;
export const DEFAULT_TOKEN_LIFETIME_S = 300;

export const clientSecretSchema = z.strictObject({
  secret: secretRef,
  method: z.enum(['client_secret_basic', 'client_secret_post', 'client_secret_jwt']).default('client_secret_basic'),
  algorithm: z.enum(['HS256', 'HS384', 'HS512']).optional().describe('client_secret_jwt only; default HS256'),
  previous: secretRef
    .optional()
    .describe(
      'secret holding the previous client secret: one retry with it when the current one gets invalid_client or unauthorized_client',
    ),
});

export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** The algorithms of keys tokengate generates itself (`privateKeyJwt.managed`). */
export const MANAGED_KEY_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'PS256', 'RS256'] as const;
export const managedKeysSchema = z.strictObject({
  algorithm: z
    .enum(MANAGED_KEY_ALGORITHMS)
    .default('ES256')
    .describe('of the generated keys: EC P-256 / P-384, Ed25519, RSA 2048 (privateKeyJwt.algorithm is not used)'),
  rotateEvery: duration.default('720h').describe('how long each key signs (at least 10s)'),
  overlap: duration
    .default('24h')
    .describe('a new key is in the JWKS this long before it signs, an old one this long after it stopped; at least 1s'),
});

export const privateKeyJwtSchema = z.strictObject({
  secret: secretRef
    .optional()
    .describe('secret holding the private key: PEM (PKCS#8, PKCS#1 RSA, SEC1 EC) or a JWK; or set managed instead'),
  managed: managedKeysSchema
    .optional()
    .describe('tokengate generates, publishes (GET /jwks/KEY.json on the admin listener) and rotates its own keys'),
  format: z.enum(['pem', 'jwk']).optional().describe('detected when absent'),
  keyId: z.string().min(1).optional().describe('JWS "kid" header'),
  algorithm: z.enum(ASYMMETRIC_ALGORITHMS).default('RS256'),
  audience: z.string().min(1).default('token-endpoint').describe('token-endpoint (default) | issuer | any literal string'),
  certificate: secretRef.optional().describe('secret holding the PEM X.509 certificate of the key; adds x5t#S256'),
  thumbprint: z.enum(['sha256', 'sha1']).default('sha256').describe('sha1 also adds the x5t header (Entra ID)'),
});

export const clientAssertionSchema = z.strictObject({
  file: name.describe(
    'file holding a JWT another issuer made (a projected service-account token, ...), relative to the config file; re-read when it changes',
  ),
  type: z.string().min(1).default('urn:ietf:params:oauth:client-assertion-type:jwt-bearer').describe('client_assertion_type sent with it'),
});

export const TLS_CLIENT_AUTH_METHODS = ['tls_client_auth', 'self_signed_tls_client_auth'] as const;

export const tlsClientAuthSchema = z.strictObject({
  method: z
    .enum(TLS_CLIENT_AUTH_METHODS)
    .default('tls_client_auth')
    .describe('RFC 8705 §2.1 (certificate from a CA the server trusts) or §2.2 (self-signed, registered with the server)'),
  certificate: secretRef.describe('secret holding the PEM X.509 client certificate (chain)'),
  key: secretRef.describe("secret holding the certificate's PEM private key"),
});

/** RFC 9449 (DPoP): the algorithms a proof key may sign with; must fit the key. */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'] as const;

export const dpopSchema = z.strictObject({
  key: secretRef
    .optional()
    .describe(
      'secret holding the private key (PEM or JWK: EC P-256/P-384, Ed25519, RSA >= 2048); absent: a P-256 key generated per process',
    ),
  algorithm: z
    .enum(DPOP_ALGORITHMS)
    .optional()
    .describe('must fit the key; default from the key: P-256 ES256, P-384 ES384, Ed25519 EdDSA, RSA PS256'),
});

export const connectionSchema = z.strictObject({
  displayName: z.string().min(1).optional(),
  clientId: z.string().min(1),
  tokenUrl: httpUrl.optional().describe('the token endpoint ("Access Token URL")'),
  issuer: httpUrl.optional().describe('instead of tokenUrl: discover token_endpoint (RFC 8414 / OIDC Discovery)'),
  clientSecret: clientSecretSchema.optional(),
  privateKeyJwt: privateKeyJwtSchema.optional(),
  tlsClientAuth: tlsClientAuthSchema.optional().describe('mutual-TLS client authentication (RFC 8705)'),
  clientAssertion: clientAssertionSchema.optional().describe('client authentication with a JWT another issuer made (workload identity)'),
  tls: tlsVerifySchema.optional().describe("verification of the token endpoint's certificate"),
  params: paramsSchema.optional(),
  dpop: dpopSchema.optional().describe('RFC 9449: bind tokens to a key and prove possession of it on every request'),
  allowInsecureHttp: z.boolean().default(false).describe('allow an http: tokenUrl/issuer on a non-loopback host'),
  timeouts: z
    .strictObject({
      connectMs: positiveMs.default(DEFAULT_TOKEN_CONNECT_TIMEOUT_MS),
      totalMs: positiveMs.default(DEFAULT_TOKEN_TIMEOUT_MS).describe('one token request, connect to last byte (ms, at most 2^31−1)'),
    })
    .prefault({}),
  retry: z
    .strictObject({
      maxAttempts: z.number().int().min(1).max(10).default(DEFAULT_TOKEN_MAX_ATTEMPTS),
      budgetMs: positiveMs.default(DEFAULT_TOKEN_BUDGET_MS).describe('longest a caller waits for a token (ms, at most 2^31−1)'),
      retryAfterCapMs: positiveMs.default(DEFAULT_RETRY_AFTER_CAP_MS),
    })
    .prefault({}),
  token: z
    .strictObject({
      expirySkewSeconds: timerSeconds.min(0).default(DEFAULT_EXPIRY_SKEW_S).describe(`at most ${MAX_TIMER_S}`),
      defaultLifetimeSeconds: timerSeconds
        .positive()
        .default(DEFAULT_TOKEN_LIFETIME_S)
        .describe(`when expires_in is absent; at most ${MAX_TIMER_S}`),
      refreshAhead: z.boolean().default(true),
    })
    .prefault({}),
});
