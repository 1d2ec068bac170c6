/**
 * docs/configuration.md, generated from the zod config schema (through its JSON Schema, like
 * config/tokengate.schema.json), so the reference lists every key the loader accepts, with its type
 * and default. `npm run schema` writes it; test/docs-reference.test.ts fails when it is stale.
 *
 * Meanings come from the schema's `.describe()` texts; NOTES adds one for keys that have none.
 */
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';

export const CONFIG_DOC_FILE = 'docs/configuration.md';

type JsonSchema = Record<string, unknown>;
const isObject = (value: unknown): value is JsonSchema => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Meanings of keys whose schema has no description, by the key path as this page prints it. */
const NOTES: Record<string, string> = {
  listen: 'the proxy listener',
  'listen.host': 'address the proxy listens on; a non-loopback host with credentialed routes and no `access` logs a `SECURITY:` warning',
  'listen.port': 'port of the proxy listener (0: any free port)',
  'listen.headersTimeoutMs': 'a client must send its request headers within this (408 after)',
  'listen.requestTimeoutMs': 'a client must send its whole request within this (408 after)',
  'listen.maxHeaderBytes': 'largest request header block (431 above)',
  admin: 'the admin listener: /healthz, /readyz, /metrics, /usage, /connections',
  'admin.host': 'address of the admin listener; keep it on loopback or a private network',
  'admin.port': 'port of the admin listener',
  logging: 'log settings (the level itself is LOG_LEVEL)',
  'logging.accessLog': 'level of the one access line per request, or off',
  secrets:
    'named secrets; every other key refers to them by name. Exactly one of `env`, `file`, `value`. ' +
    'Secret definitions are not `${VAR}`-substituted',
  'secrets.<name>': 'one secret',
  cache: 'where tokens are cached: this process, or Redis shared by a fleet ([fleets](fleets.md))',
  'cache.store': '`memory`: per process; `redis`: shared by every replica on the same Redis and key prefix',
  'cache.redis': 'the Redis of `store: redis`: one of `url`, `sentinel`, `cluster` (two at once are refused)',
  'cache.redis.keyPrefix': 'prefix of every Redis key and the pub/sub channel; replicas that share tokens share it',
  'cache.encryptionKey': 'AES-256-GCM key for entries in Redis: a secret holding 32 bytes as 64 hex digits or base64',
  'cache.allowPlaintext': 'accept tokens in Redis unencrypted; `store: redis` needs this or `encryptionKey`',
  access: 'who may use the gateway: API keys and/or source addresses ([security](security.md)); a route may replace it',
  'access.header': 'request header carrying the API key (removed before forwarding)',
  'access.apiKeys': 'accepted keys, each a secret',
  'access.apiKeys[]': 'one key',
  connections: 'OAuth client connections by key; routes refer to them',
  'connections.<key>': 'one client connection: where and how to get tokens',
  'connections.<key>.displayName': 'shown in /usage and /connections (default: the key)',
  'connections.<key>.clientId': 'the OAuth client_id',
  'connections.<key>.clientSecret': 'client authentication with a shared secret ([client authentication](client-auth.md))',
  'connections.<key>.clientSecret.method': 'how the secret is sent: Basic header, form fields, or an HMAC-signed JWT',
  'connections.<key>.privateKeyJwt': 'client authentication with a signed JWT, RFC 7523 ([client authentication](client-auth.md))',
  'connections.<key>.privateKeyJwt.algorithm': 'JWS algorithm; must fit the key',
  'connections.<key>.params.<name>': 'one form field and its value',
  'connections.<key>.timeouts': 'limits of one token request',
  'connections.<key>.timeouts.connectMs': 'TCP (and TLS) connect to the token endpoint',
  'connections.<key>.retry': 'retries of network errors, time-outs, 5xx and 429 ([resilience](resilience.md))',
  'connections.<key>.retry.maxAttempts': 'attempts per token fetch, the first included',
  'connections.<key>.retry.retryAfterCapMs': 'a longer Retry-After from the token endpoint ends the attempts instead of being waited for',
  'connections.<key>.token': 'how long a token is used',
  'connections.<key>.token.expirySkewSeconds': 'stop using a token this long before it expires (at most 10 % of its lifetime)',
  'connections.<key>.token.refreshAhead': 'renew a token in the background before it expires, while the cached one serves',
  routes: 'tried in order; the first match wins',
  'routes[]': 'one route',
  'routes[].name': 'unique; the `route` label of metrics and logs',
  'routes[].match': 'which requests the route takes',
  'routes[].match.pathPrefix': 'matches on segment boundaries: /partner matches /partner and /partner/x, not /partnership',
  'routes[].match.methods': 'only these methods (default: any)',
  'routes[].match.host': 'only this Host header (case-insensitive, port ignored)',
  'routes[].upstream': 'base URL requests are forwarded to (no query, fragment or user info)',
  'routes[].stripPrefix': 'drop pathPrefix before appending the path to the upstream URL',
  'routes[].auth': 'the token injected into requests of this route',
  'routes[].auth.type': '`client-connection`: inject a token of `connection`; `none`: forward without one',
  'routes[].auth.connection': 'key of the connection under `connections`',
  'routes[].auth.params.<name>': 'one form field and its value',
  'routes[].timeouts': 'limits of one upstream request',
  'routes[].timeouts.connectMs': 'TCP (and TLS) connect to the upstream',
  'routes[].access': 'replaces the top-level `access` for this route',
};

interface Row {
  key: string;
  type: string;
  default: string;
  meaning: string;
}

const code = (value: unknown) => `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;

function typeOf(schema: JsonSchema): string {
  if (Array.isArray(schema.enum)) return schema.enum.map(code).join(' \\| ');
  if (Array.isArray(schema.anyOf)) {
    const branches = schema.anyOf.filter(isObject);
    if (branches.every((branch) => isObject(branch.properties))) {
      return `one of ${branches.map((branch) => `{ ${Object.keys(branch.properties as JsonSchema).join(', ')} }`).join(', ')}`;
    }
    return branches.map(typeOf).join(' \\| ');
  }
  if (schema.type === 'array') return isObject(schema.items) && schema.items.type !== 'object' ? `${typeOf(schema.items)}[]` : 'list';
  if (schema.type === 'object') return isObject(schema.additionalProperties) ? 'map' : 'object';
  if (Array.isArray(schema.type)) return schema.type.join(' \\| ');
  const type = typeof schema.type === 'string' ? schema.type : 'any';
  const { minimum, exclusiveMinimum } = schema;
  // zod gives every int a maximum of Number.MAX_SAFE_INTEGER: no limit worth printing.
  const maximum = schema.maximum === Number.MAX_SAFE_INTEGER ? undefined : schema.maximum;
  if (typeof minimum === 'number' && typeof maximum === 'number') return `${type} ${minimum}-${maximum}`;
  if (typeof minimum === 'number') return `${type} ≥ ${minimum}`;
  if (typeof exclusiveMinimum === 'number') return `${type} > ${exclusiveMinimum}`;
  return type;
}

function walk(schema: JsonSchema, key: string, required: boolean, rows: Row[]): void {
  const described = typeof schema.description === 'string' ? schema.description : undefined;
  const note = NOTES[key] ?? NOTES[key.replace(/^routes\[\]\.access/, 'access')];
  const meaning = [described ?? note, required ? '**required**' : undefined].filter((part) => part !== undefined).join('; ');
  const fallback = schema.default;
  const shown = fallback === undefined || (isObject(fallback) && Object.keys(fallback).length === 0) ? '' : code(fallback);
  rows.push({ key, type: typeOf(schema), default: shown, meaning });

  if (isObject(schema.properties)) {
    const needed = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
    for (const [name, child] of Object.entries(schema.properties)) {
      if (isObject(child)) walk(child, `${key}.${name}`, needed.has(name), rows);
    }
  }
  if (isObject(schema.additionalProperties)) {
    const entry = key === 'connections' ? '<key>' : '<name>';
    walk(schema.additionalProperties, `${key}.${entry}`, false, rows);
  }
  if (isObject(schema.items) && schema.items.type === 'object') walk(schema.items, `${key}[]`, false, rows);
  if (Array.isArray(schema.anyOf)) {
    for (const branch of schema.anyOf.filter(isObject)) {
      if (!isObject(branch.properties)) continue;
      for (const [name, child] of Object.entries(branch.properties)) if (isObject(child)) walk(child, `${key}.${name}`, false, rows);
    }
  }
}

const cell = (text: string) => text.replaceAll('\n', ' ').replaceAll('|', '\\|').replaceAll('\\\\|', '\\|');

/** The page's exact text. */
export function renderConfigDoc(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' }) as JsonSchema;
  const properties = schema.properties as Record<string, JsonSchema>;
  const lines = [
    '<!-- Generated from src/config/schema.ts by `npm run schema` (scripts/config-doc.ts); do not edit. -->',
    '',
    '# Configuration reference',
    '',
    'One YAML file: `--config FILE`, else `$TOKENGATE_CONFIG`, else `config/gateway.yaml`. `config/gateway.yaml` is a',
    'commented example of the common keys, and `config/tokengate.schema.json` is the JSON Schema editors complete and',
    'check it with. Unknown keys are errors; `node dist/cli.js validate --config FILE` lists every problem with its',
    'file, key path and line:column.',
    '',
    '`${VAR}` and `${VAR:-default}` are replaced by environment variables in every string value except secret',
    'definitions (a secret reads its variable with `{ env: VAR }`). A value that is one `${VAR}` takes the type it',
    'reads as: `port: ${PORT:-8080}` is a number. Every key that holds a secret names an entry under `secrets`.',
    '',
    'Keys are written as paths: `<name>` and `<key>` stand for a map key you choose, `[]` for an item of a list.',
    '',
  ];
  const sections = Object.entries(properties).filter(([name]) => name !== '$schema');
  lines.push(sections.map(([name]) => `[\`${name}\`](#${name})`).join(' · '), '');
  const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
  for (const [name, child] of sections) {
    const rows: Row[] = [];
    walk(child, name, required.has(name), rows);
    lines.push(`## ${name}`, '', '| key | type | default | meaning |', '| --- | --- | --- | --- |');
    for (const row of rows) lines.push(`| \`${row.key}\` | ${cell(row.type)} | ${cell(row.default)} | ${cell(row.meaning)} |`);
    lines.push('');
  }
  return lines.join('\n');
}
