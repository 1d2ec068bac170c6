/**
 * The one source of the config's shape: the loader validates with it, the types come from it,
 * and config/tokengate.schema.json is generated from it (npm run schema). The parts are in
 * schema-values.ts, schema-connection.ts, schema-route.ts and schema-admin.ts.
 */
import { z } from 'zod';
import { adminAuthSchema, adminSessionsSchema, tracingSchema, type adminOidcSchema } from './schema-admin.js';
import { connectionSchema } from './schema-connection.js';
import { accessSchema, routeSchema } from './schema-route.js';
import { name, positiveMs, secretRef, secretSchema, tlsVerifySchema } from './schema-values.js';

export const DEFAULT_LISTEN_HOST = '0.0.0.0';
export const DEFAULT_LISTEN_PORT = 8080;
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
export const DEFAULT_ADMIN_PORT = 9090;
export const DEFAULT_REDIS_KEY_PREFIX = 'tokengate:';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** Below the usual orchestrator grace periods (Kubernetes 30 s) so the drain ends before a SIGKILL. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 25_000;

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
