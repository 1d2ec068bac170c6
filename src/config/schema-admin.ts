/** The admin listener's and tracing's parts of the config schema: sign-in (keys, single sign-on), sessions, trace export. */
import { z } from 'zod';
import { clientSecretSchema, privateKeyJwtSchema } from './schema-connection.js';
import { duration, httpUrl, secretRef } from './schema-values.js';

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
