/** A route's part of the config schema: match, upstream, TLS, auth, time-outs, replay and the access policy. */
import { z } from 'zod';
import { httpUrl, paramsSchema, positiveMs, secretRef, tlsVerifySchema } from './schema-values.js';

export const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_UPSTREAM_RESPONSE_TIMEOUT_MS = 30_000;
export const DEFAULT_REPLAY_BODY_LIMIT = 64 * 1024;
export const DEFAULT_ACCESS_HEADER = 'X-Gateway-Key';

/** A route's TLS: verification as for a token endpoint, plus an optional client certificate (mutual TLS). */
export const routeTlsSchema = tlsVerifySchema.extend({
  certificate: secretRef.optional().describe('secret holding a PEM client certificate to present to the upstream'),
  key: secretRef.optional().describe("secret holding that certificate's PEM private key"),
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
