/**
 * The one source of the config's shape: the loader validates with it, the types come from it,
 * and config/tokengate.schema.json is generated from it (npm run schema).
 */
import { z } from 'zod';
import { DURATION_PATTERN } from './duration.js';

export const DEFAULT_LISTEN_HOST = '0.0.0.0';
export const DEFAULT_LISTEN_PORT = 8080;
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
export const DEFAULT_ADMIN_PORT = 9090;
export const DEFAULT_TOKEN_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_TOKEN_TIMEOUT_MS = 10_000;
export const DEFAULT_TOKEN_MAX_ATTEMPTS = 3;
export const DEFAULT_TOKEN_BUDGET_MS = 15_000;
export const DEFAULT_RETRY_AFTER_CAP_MS = 5_000;
export const DEFAULT_EXPIRY_SKEW_S = 30;
export const DEFAULT_TOKEN_LIFETIME_S = 300;
export const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_UPSTREAM_RESPONSE_TIMEOUT_MS = 30_000;
export const DEFAULT_REPLAY_BODY_LIMIT = 64 * 1024;
export const DEFAULT_ACCESS_HEADER = 'X-Gateway-Key';
export const DEFAULT_REDIS_KEY_PREFIX = 'tokengate:';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** Below the usual orchestrator grace periods (Kubernetes 30 s) so the drain ends before a SIGKILL. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 25_000;

const name = z.string().min(1);
const secretRef = name.describe('name of an entry under `secrets`');
/**
 * The longest delay Node's timers can hold (2^31−1 ms, about 24.8 days): a larger one fires after
 * 1 ms instead, so every time-out in the config is bounded by it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const positiveMs = z
  .number()
  .int()
  .positive()
  .max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} ms (2^31−1, the longest delay a Node.js timer can hold)`)
  .describe('milliseconds, 1 to 2147483647 (2^31−1)');
/** Seconds that become a timer's delay (token lifetimes and skews), bounded as positiveMs is. */
const MAX_TIMER_S = Math.floor(MAX_TIMER_MS / 1000);
const timerSeconds = z.number().max(MAX_TIMER_S, `must be at most ${MAX_TIMER_S} s (a Node.js timer holds at most 2^31−1 ms)`);

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}, 'must be an absolute http: or https: URL');

export const secretSchema = z.union([
  z.strictObject({
    env: name.describe("environment variable holding the secret; a process's environment is fixed: rotate it with a (rolling) restart"),
  }),
  z.strictObject({
    file: name.describe(
      'file holding the secret, relative to the config file; a regular file (not a FIFO, device or socket), read within 5 s; ' +
        'followed while serving: a change (a Kubernetes Secret update, an in-place write) is applied without a restart',
    ),
  }),
  z.strictObject({ value: z.string().describe('the secret inline (logged as a warning; not for production)') }),
]);

const paramValue = z.union([z.string(), z.number(), z.boolean()]);
/** Form fields tokengate sets itself: a param must not change the grant or the client's credentials. */
const RESERVED_PARAMS = ['grant_type', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];
const paramsSchema = z
  .record(z.string().min(1), paramValue)
  .superRefine((params, ctx) => {
    for (const name of RESERVED_PARAMS) {
      if (name in params) ctx.addIssue({ code: 'custom', path: [name], message: `${name} is set by tokengate and cannot be a param` });
    }
  })
  .describe('extra token-request parameters, sent as form fields');

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
/** A duration string: a whole number and s, m or h (src/config/duration.ts). */
const duration = z.string().regex(DURATION_PATTERN, 'must be a number and a unit: s, m or h (20s, 15m, 720h)');

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

/** How tokengate verifies the server of an outbound TLS connection (token endpoint or upstream). */
export const tlsVerifySchema = z.strictObject({
  ca: secretRef.optional().describe('secret holding a PEM CA bundle; replaces the system roots for this connection'),
  insecureSkipVerify: z.boolean().default(false).describe('do not verify the server certificate (logged as a warning)'),
});

/** A route's TLS: verification as for a token endpoint, plus an optional client certificate (mutual TLS). */
export const routeTlsSchema = tlsVerifySchema.extend({
  certificate: secretRef.optional().describe('secret holding a PEM client certificate to present to the upstream'),
  key: secretRef.optional().describe("secret holding that certificate's PEM private key"),
});

/** `host:port` of a Sentinel or a Cluster node: a hostname, an IPv4 address or a bracketed IPv6 address. */
const redisNode = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port (an IPv6 address in brackets)')
  .describe('host:port');
const redisSecret = z.strictObject({ secret: secretRef });
/** TLS to Redis nodes (and Sentinels): on when present; verification as for a token endpoint. */
const redisTlsSchema = tlsVerifySchema.describe("connect with TLS; verification of the servers' certificates");

export const redisSentinelSchema = z.strictObject({
  name: name.describe('the master name the Sentinels monitor (sentinel monitor NAME ...)'),
  nodes: z.array(redisNode).min(1).describe('Sentinels to ask for the master, host:port each'),
  username: z.string().min(1).optional().describe('ACL user of the Redis servers (AUTH username)'),
  password: redisSecret.optional().describe("password of the Redis servers (requirepass or the ACL user's)"),
  sentinelUsername: z.string().min(1).optional().describe('ACL user of the Sentinels, when they require one'),
  sentinelPassword: redisSecret.optional().describe('password of the Sentinels (sentinel requirepass), when they require one'),
  tls: redisTlsSchema.optional(),
});

export const redisClusterSchema = z.strictObject({
  nodes: z.array(redisNode).min(1).describe('some nodes of the cluster, host:port each; the rest are discovered'),
  username: z.string().min(1).optional().describe('ACL user of the cluster nodes (AUTH username)'),
  password: redisSecret.optional().describe("password of the cluster nodes (requirepass or the ACL user's)"),
  tls: redisTlsSchema.optional(),
});

export const listenTlsSchema = z.strictObject({
  certificate: secretRef.describe('secret holding the PEM server certificate (chain)'),
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

export const accessSchema = z.strictObject({
  header: z
    .string()
    .min(1)
    .default(DEFAULT_ACCESS_HEADER)
    .describe('header carrying the API key: an HTTP header name (RFC 9110 token, no spaces or colons)'),
  apiKeys: z.array(z.strictObject({ secret: secretRef })).optional(),
  allowFrom: z
    .array(z.string().min(1))
    .optional()
    .describe('IPv4/IPv6 addresses or CIDR blocks, e.g. 10.0.0.0/8 or fd00::/8 (each checked with net.BlockList)'),
});

export const routeSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits, and _ . : - (it is a metric label)'),
  match: z.strictObject({
    pathPrefix: z.string().startsWith('/', 'must start with /'),
    methods: z
      .array(z.string().regex(/^[A-Za-z]+$/))
      .min(1)
      .optional(),
    host: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Host to match, without port; an internationalised name is normalised to its A-label (bücher.example → xn--bcher-kva.example)',
      ),
  }),
  upstream: httpUrl,
  tls: routeTlsSchema.optional().describe("verification of an https: upstream's certificate, and the client certificate to present"),
  stripPrefix: z.boolean().default(false),
  auth: z.strictObject({
    type: z.enum(['client-connection', 'none']).default('client-connection'),
    connection: z.string().min(1).optional(),
    params: paramsSchema.optional().describe("overrides of the connection's params for this route"),
  }),
  timeouts: z
    .strictObject({
      connectMs: positiveMs.default(DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS),
      responseMs: positiveMs
        .default(DEFAULT_UPSTREAM_RESPONSE_TIMEOUT_MS)
        .describe('the wait for the upstream response headers (a body may then stream for as long as it takes); ms, at most 2^31−1'),
    })
    .prefault({}),
  replayOn401: z
    .enum(['invalid_token', 'any', 'off'])
    .default('invalid_token')
    .describe('refetch the token and replay once when the upstream answers 401'),
  replayBodyLimit: z.number().int().min(0).default(DEFAULT_REPLAY_BODY_LIMIT).describe('bytes buffered for a replay'),
  websocket: z
    .boolean()
    .default(true)
    .describe('forward WebSocket upgrades (RFC 6455) with the injected token; false answers them 400 BAD_REQUEST'),
  access: accessSchema.optional(),
});

export const DEFAULT_ADMIN_OIDC_SCOPES = ['openid', 'profile', 'email'];
export const DEFAULT_ADMIN_SESSION_TTL = '8h';

/** Single sign-on for people (OpenID Connect authorization code flow with PKCE); src/admin/sso.ts. */
export const adminOidcSchema = z.strictObject({
  issuer: httpUrl.describe('the OpenID provider: its discovery document is read from here'),
  clientId: z.string().min(1).describe("the console's client_id at the provider"),
  clientSecret: clientSecretSchema.optional().describe('client authentication with a shared secret, as for connections'),
  privateKeyJwt: privateKeyJwtSchema.optional().describe('client authentication with a signed JWT, as for connections'),
  redirectUrl: httpUrl.optional().describe('registered at the provider; default: the admin origin + /auth/callback'),
  scopes: z.array(z.string().min(1)).min(1).default(DEFAULT_ADMIN_OIDC_SCOPES).describe('must include openid'),
  roles: z
    .strictObject({
      claim: z.string().min(1).describe('claim of the ID token (or userinfo) holding the groups: a string or an array of strings'),
      editors: z.array(z.string().min(1)).default([]).describe('claim values whose holders may change connections and route auth'),
      viewers: z.array(z.string().min(1)).default([]).describe('claim values whose holders may read config and usage data and press Test'),
    })
    .describe('which values of a claim make an editor or a viewer; a user with neither gets no session'),
});

/** Admin keys for scripts (`Authorization: Bearer <key>`, role editor) and single sign-on for people. */
export const adminAuthSchema = z.strictObject({
  apiKeys: z
    .array(z.strictObject({ secret: secretRef }))
    .min(1)
    .optional()
    .describe('keys for scripts (Authorization: Bearer <key>, role editor); the console can sign in with one too'),
  oidc: adminOidcSchema.optional().describe('people sign in with the company OpenID provider; roles from a claim'),
});

export const adminSessionsSchema = z.strictObject({
  store: z.enum(['memory', 'redis']).default('memory').describe('memory: this process; redis: shared by the fleet (uses cache.redis)'),
  ttl: duration.default(DEFAULT_ADMIN_SESSION_TTL).describe('how long a console session lasts from sign-in (1m to 168h)'),
});

export const TRACING_PROTOCOLS = ['http/protobuf', 'http/json'] as const;

/**
 * OpenTelemetry trace export. Every key is optional without a default: a key the YAML leaves out
 * falls back to its OTEL_* environment variable (src/tracing/settings.ts), a key it sets wins.
 */
export const tracingSchema = z.strictObject({
  enabled: z
    .boolean()
    .optional()
    .describe('true exports traces; left out, OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT turn it on'),
  endpoint: httpUrl.optional().describe('OTLP/HTTP base URL, /v1/traces is appended (default http://localhost:4318)'),
  protocol: z.enum(TRACING_PROTOCOLS).optional().describe('http/protobuf (default) or http/json'),
  sampleRatio: z.number().min(0).max(1).optional().describe('share of new traces recorded (parent-based; default 1.0)'),
  serviceName: z.string().min(1).optional().describe('service.name of the spans (default tokengate)'),
});

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  listen: z
    .strictObject({
      host: z.string().min(1).default(DEFAULT_LISTEN_HOST),
      port: z.number().int().min(0).max(65535).default(DEFAULT_LISTEN_PORT),
      headersTimeoutMs: positiveMs.default(DEFAULT_HEADERS_TIMEOUT_MS),
      requestTimeoutMs: positiveMs.default(DEFAULT_REQUEST_TIMEOUT_MS),
      maxHeaderBytes: z.number().int().min(1024).default(DEFAULT_MAX_HEADER_BYTES),
      drainTimeoutMs: positiveMs
        .default(DEFAULT_DRAIN_TIMEOUT_MS)
        .describe('on SIGTERM/SIGINT, how long in-flight requests may take before their connections are closed (ms, at most 2^31−1)'),
      tls: listenTlsSchema.optional().describe('serve HTTPS instead of plain HTTP'),
    })
    .prefault({}),
  admin: z
    .strictObject({
      host: z.string().min(1).default(DEFAULT_ADMIN_HOST),
      port: z.number().int().min(0).max(65535).default(DEFAULT_ADMIN_PORT),
      auth: adminAuthSchema.optional().describe('who may make changes through the console or the admin API'),
      allowedHosts: z
        .array(z.string().min(1))
        .default([])
        .describe('host names the admin listener answers to (Host header), besides localhost and any IP literal; others get 403'),
      sessions: adminSessionsSchema.prefault({}).describe('where console sessions are kept and how long they last'),
      console: z
        .strictObject({
          edit: z.boolean().default(false).describe('true: connections and route auth may be changed from the console'),
        })
        .prefault({}),
    })
    .refine((admin) => !admin.console.edit || admin.auth !== undefined, {
      path: ['console', 'edit'],
      message: 'edit: true needs admin.auth (apiKeys or oidc) so that only signed-in operators can change the config',
    })
    .prefault({}),
  logging: z
    .strictObject({
      accessLog: z.enum(['off', 'trace', 'debug', 'info']).default('info'),
    })
    .prefault({}),
  secrets: z.record(z.string().min(1), secretSchema).default({}),
  cache: z
    .strictObject({
      store: z.enum(['memory', 'redis']).default('memory'),
      redis: z
        .strictObject({
          url: z
            .string()
            .min(1)
            .optional()
            .describe(
              `a single Redis server, redis://host:port or rediss:// for TLS ` +
                `(default ${DEFAULT_REDIS_URL} when neither sentinel nor cluster is set)`,
            ),
          sentinel: redisSentinelSchema
            .optional()
            .describe('a master found through Redis Sentinel, followed across failovers ([fleets](fleets.md))'),
          cluster: redisClusterSchema
            .optional()
            .describe('a Redis Cluster; MOVED/ASK redirections and slot migrations are followed ([fleets](fleets.md))'),
          keyPrefix: z.string().default(DEFAULT_REDIS_KEY_PREFIX),
        })
        .prefault({}),
      encryptionKey: z.strictObject({ secret: secretRef }).optional(),
      allowPlaintext: z.boolean().default(false),
    })
    .prefault({}),
  access: accessSchema.optional(),
  connections: z.record(z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits, and _ . : -'), connectionSchema).default({}),
  routes: z.array(routeSchema).default([]),
  tracing: tracingSchema.optional().describe('OpenTelemetry tracing (off unless enabled here or by OTEL_* variables)'),
});

export type RawConfig = z.output<typeof configSchema>;
export type RawConnection = z.output<typeof connectionSchema>;
export type RawRoute = z.output<typeof routeSchema>;
export type RawAccess = z.output<typeof accessSchema>;
export type RawTlsVerify = z.output<typeof tlsVerifySchema>;
export type RawTracing = z.output<typeof tracingSchema>;
export type RawAdminOidc = z.output<typeof adminOidcSchema>;
