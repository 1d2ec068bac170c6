/**
 * Property-based tests (fast-check): the config loader fails only with ConfigError whatever it
 * is fed; normalisation and matching never put a path outside its route's prefix or above the
 * upstream's base path; and the running gateway never sends a request to a host the config does
 * not name, whatever the request target or Host header.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { Secret } from '../src/config/secret.js';
import { AccessChecker } from '../src/proxy/access.js';
import { normalizePath } from '../src/routing/path.js';
import { prefixMatches, Router, upstreamPath } from '../src/routing/router.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startServer, type TestServer } from './support/servers.js';
import { requireProgram } from './support/programs.js';
import { testPki } from './support/tls.js';

const pki = testPki();
/** Secrets for the config properties; a function so openssl runs only when those suites do. */
const configEnv = () => ({
  TG_CERT: pki.client.cert,
  TG_KEY: pki.client.key,
  TG_SERVER_CERT: pki.server.cert,
  TG_SERVER_KEY: pki.server.key,
  TG_CA: pki.ca.cert,
  TG_TEXT: 'plain secret',
  TG_EMPTY: '',
});

/** Parses and fails the property on anything but a ConfigError. */
async function loadsOrConfigError(text: string): Promise<void> {
  try {
    const config = await buildConfigTextOnly(text, 'property.yaml', { env: configEnv() });
    assert.ok(Object.isFrozen(config));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    assert.ok(error.problems.length > 0);
  }
}

/** A config using every feature; the property mutates it a little, so the loader's later checks run. */
const VALID_CONFIG = {
  listen: {
    host: '127.0.0.1',
    port: 0,
    headersTimeoutMs: 1_000,
    requestTimeoutMs: 2_000,
    maxHeaderBytes: 8_192,
    tls: { certificate: 'server-cert', key: 'server-key' },
  },
  secrets: {
    'server-cert': { env: 'TG_SERVER_CERT' },
    'server-key': { env: 'TG_SERVER_KEY' },
    'client-cert': { env: 'TG_CERT' },
    'client-key': { env: 'TG_KEY' },
    ca: { env: 'TG_CA' },
    'api-key': { env: 'TG_TEXT' },
    hmac: { value: 'an inline secret of at least 32 bytes!' },
  },
  access: { header: 'X-Gateway-Key', apiKeys: [{ secret: 'api-key' }], allowFrom: ['10.0.0.0/8', '::1/128'] },
  connections: {
    mtls: {
      clientId: 'a',
      tokenUrl: 'https://as.example/token',
      tls: { ca: 'ca' },
      tlsClientAuth: { certificate: 'client-cert', key: 'client-key' },
    },
    jwt: {
      clientId: 'b',
      issuer: 'https://as.example',
      clientSecret: { secret: 'hmac', method: 'client_secret_jwt' },
      params: { scope: 'x' },
    },
    pkj: {
      clientId: 'c',
      tokenUrl: 'http://127.0.0.1:1/token',
      privateKeyJwt: { secret: 'client-key', algorithm: 'ES256', certificate: 'client-cert' },
    },
  },
  routes: [
    {
      name: 'r1',
      match: { pathPrefix: '/api', methods: ['GET'] },
      upstream: 'https://api.example/v2',
      stripPrefix: true,
      tls: { ca: 'ca', certificate: 'client-cert', key: 'client-key' },
      auth: { connection: 'mtls', params: { scope: 'y' } },
    },
    {
      name: 'r2',
      match: { pathPrefix: '/open', host: 'gw.internal' },
      upstream: 'https://open.example',
      tls: { insecureSkipVerify: true },
      auth: { type: 'none' },
      access: { allowFrom: ['127.0.0.1/32'] },
    },
    { name: 'r3', match: { pathPrefix: '/' }, upstream: 'http://127.0.0.1:2', auth: { connection: 'pkj' } },
  ],
};

type Key = string | number;
/** Every key path in a JSON value, the root excluded. */
function keyPaths(value: unknown, path: Key[] = []): Key[][] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, item]) => {
    const here = [...path, Array.isArray(value) ? Number(key) : key];
    return [here, ...keyPaths(item, here)];
  });
}

const REMOVE = Symbol('remove');
// Replacement values: wrong types, the config's own values in the wrong places, and edge cases.
const replacement = fc.oneof(
  fc.constant(REMOVE),
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    '',
    '/',
    '//',
    '/a/../b',
    '${TG_TEXT}',
    '${NOPE}',
    -1,
    0,
    1e21,
    true,
    null,
    [],
    {},
    'ca',
    'client-cert',
    'client-key',
    'server-key',
    'hmac',
    'unknown',
    'mtls',
    'missing',
    'http://as.example/token',
    'https://user:pw@as.example/x?q',
    'ftp://x',
    'not a url',
    '300.1.1.1/8',
    '::1/129',
    'tls_client_auth',
    'self_signed_tls_client_auth',
    'client_secret_post',
    'none',
    'RS256',
    { env: 'TG_EMPTY' },
    { file: 'missing.pem' },
    { file: '.' },
    { value: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' },
    { ca: 'api-key' },
    { insecureSkipVerify: true, ca: 'ca' },
    { certificate: 'client-cert', key: 'server-key' },
  ),
);

function mutate(mutations: Array<[Key[], unknown]>): unknown {
  const doc = structuredClone(VALID_CONFIG) as Record<Key, unknown>;
  for (const [path, value] of mutations) {
    let parent: Record<Key, unknown> | undefined = doc;
    for (const key of path.slice(0, -1))
      parent = typeof parent?.[key] === 'object' && parent[key] !== null ? (parent[key] as Record<Key, unknown>) : undefined;
    if (parent === undefined) continue;
    if (value === REMOVE) delete parent[path.at(-1)!];
    else parent[path.at(-1)!] = value;
  }
  return doc;
}

const mutatedConfig = fc
  .array(fc.tuple(fc.constantFrom(...keyPaths(VALID_CONFIG)), replacement), { minLength: 1, maxLength: 3 })
  .map(mutate);

const TRICKY_YAML = [
  'a: &x [*x]',
  'routes: !!binary aGVsbG8=',
  '<<: {listen: 1}',
  'listen: {port: 1}\nlisten: {port: 2}',
  '? [a]\n: b',
  '--- a\n--- b',
  'secrets: {s: {value: x}}\nroutes: [{name: r, match: {pathPrefix: /}, upstream: "https://u", auth: {type: none}, tls: {ca: s}}]',
  'connections: {c: {clientId: x, tokenUrl: "https://a", tlsClientAuth: {certificate: s, key: s}}}\nsecrets: {s: {value: "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----"}}',
  '"\\ud800": 1',
  'a: !!js/function "() => 1"',
  '- 1\n- 2',
  '~',
  "'",
  '{',
  'x: ${',
];

describe('config loader properties', requireProgram('openssl', 'openssl'), () => {
  it('throws nothing but ConfigError on arbitrary text', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom(...TRICKY_YAML)), loadsOrConfigError),
      {
        numRuns: 500,
      },
    );
  });

  it('throws nothing but ConfigError on arbitrary JSON and YAML values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        await loadsOrConfigError(JSON.stringify(value));
        await loadsOrConfigError(stringify(value));
      }),
      { numRuns: 300 },
    );
  });

  it('regression: an alias to its own ancestor is a ConfigError with the key path, not a stack overflow', async () => {
    await assert.rejects(
      () => buildConfigTextOnly('routes:\n  - &r\n    name: x\n    self: *r\n', 'property.yaml'),
      (error: unknown) => error instanceof ConfigError && error.problems[0]?.path === 'routes[0].self',
    );
  });

  it('loads the unmutated config the next property starts from', async () => {
    assert.equal((await buildConfigTextOnly(stringify(VALID_CONFIG), 'property.yaml', { env: configEnv() })).routes.length, 3);
  });

  it('throws nothing but ConfigError on a full config with values removed, retyped or moved', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedConfig, (value) => loadsOrConfigError(stringify(value))),
      { numRuns: 400 },
    );
  });
});

// Segments chosen to provoke escapes: dots in every spelling, encoded separators, empty segments.
const SEGMENTS = [
  'a',
  'b',
  'api',
  'v1',
  '.',
  '..',
  '%2e',
  '%2E%2e',
  '.%2e',
  '%2e.',
  '...',
  '',
  'a.b',
  'x%2fy',
  '%2F',
  '%5c',
  'a\\b',
  '%00',
  '%41',
  '~',
  '%',
  '%zz',
  'x#',
];
const segment = fc.constantFrom(...SEGMENTS);
const rawPath = fc.oneof(
  { weight: 4, arbitrary: fc.array(segment, { maxLength: 8 }).map((parts) => `/${parts.join('/')}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }) },
);
const prefix = fc.array(fc.constantFrom('a', 'b', 'api', 'v1', 'a.b'), { maxLength: 3 }).map((parts) => `/${parts.join('/')}`);
const basePath = fc
  .array(fc.constantFrom('base', 'v2', 'x.y'), { maxLength: 2 })
  .map((parts) => (parts.length === 0 ? '' : `/${parts.join('/')}`));

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** Path segments as an RFC 3986 / WHATWG resolver would see them: a dot segment here could climb. */
function hasDotOrEmptySegment(path: string): boolean {
  return (
    path
      .split('/')
      .slice(1, -1)
      .some((s) => s === '' || DOT_SEGMENT.test(s)) || DOT_SEGMENT.test(path.split('/').at(-1)!)
  );
}

/** Within `base` on a segment boundary. */
function within(base: string, path: string): boolean {
  return base === '' || base === '/' || path === base || path.startsWith(`${base}/`);
}

describe('path normalisation and matching properties', () => {
  it('a normalised path has no dot or empty segments, no ambiguous bytes, and normalises to itself', async () => {
    fc.assert(
      fc.property(rawPath, (path) => {
        const normalised = normalizePath(path);
        if (normalised === undefined) return;
        assert.ok(normalised.startsWith('/'));
        assert.ok(!hasDotOrEmptySegment(normalised), normalised);
        assert.ok(!/%(2f|5c|00)|[\\#]|[\u0000-\u001f\u007f]/i.test(normalised));
        assert.equal(normalizePath(normalised), normalised);
        // An upstream that resolves dot segments itself (WHATWG URL) sees the very same path.
        if (/^[A-Za-z0-9/._~%-]*$/.test(normalised)) assert.equal(new URL(`http://upstream${normalised}`).pathname, normalised);
      }),
      { numRuns: 2_000 },
    );
  });

  it('a matched path is inside its route prefix, and the upstream path stays under the base path', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(prefix, basePath, fc.boolean()), { minLength: 1, maxLength: 4 }),
        rawPath,
        async (routes, path) => {
          const config = await buildConfigTextOnly(
            stringify({
              routes: routes.map(([pathPrefix, base, stripPrefix], i) => ({
                name: `r${i}`,
                match: { pathPrefix },
                upstream: `http://u${i}.example${base}`,
                stripPrefix,
                auth: { type: 'none' },
              })),
            }),
            'property.yaml',
          );
          const router = new Router(config.routes, (route) => route.upstreamUrl.pathname.replace(/\/+$/, ''));
          const normalised = normalizePath(path);
          if (normalised === undefined) return;
          const matched = router.match('GET', undefined, normalised);
          if (matched === undefined) return;
          const { pathPrefix } = matched.route.match;
          assert.ok(prefixMatches(pathPrefix, normalised) && within(pathPrefix, normalised), `${normalised} matched ${pathPrefix}`);
          const forwarded = upstreamPath(matched.route, matched.data, normalised);
          assert.ok(within(matched.data, forwarded), `${forwarded} is outside ${matched.data}`);
          const resolved = new URL(`http://upstream${forwarded}`).pathname;
          assert.ok(within(matched.data, resolved), `${resolved} (resolved) is outside ${matched.data}`);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

/** A 32-bit IPv4 address as dotted quad. */
const dotted = (n: number) => [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');

describe('access policy properties', () => {
  it('admits an IPv4 address, plain or IPv4-mapped, exactly when a bit-mask computation puts it in an allowed block', async () => {
    const block = fc.tuple(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 32 }));
    fc.assert(
      fc.property(fc.array(block, { minLength: 1, maxLength: 3 }), fc.nat({ max: 0xffffffff }), (blocks, address) => {
        const checker = new AccessChecker({
          header: 'x-gateway-key',
          apiKeys: [],
          allowFrom: blocks.map(([base, bits]) => `${dotted(base)}/${bits}`),
        });
        const mask = (bits: number) => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);
        const inside = blocks.some(([base, bits]) => (address & mask(bits)) >>> 0 === (base & mask(bits)) >>> 0);
        const expected = inside ? undefined : 'address';
        assert.equal(checker.check(dotted(address), undefined), expected);
        assert.equal(checker.check(`::ffff:${dotted(address)}`, undefined), expected);
      }),
      { numRuns: 2_000 },
    );
  });

  it('admits a key exactly when it equals one of the configured keys', async () => {
    const key = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(
        fc.array(key, { minLength: 1, maxLength: 3 }),
        fc.oneof(key, fc.constant('')),
        fc.boolean(),
        (keys, other, pickConfigured) => {
          const checker = new AccessChecker({
            header: 'x-gateway-key',
            apiKeys: keys.map((k, i) => new Secret(`k${i}`, k)),
            allowFrom: [],
          });
          const presented = pickConfigured ? keys[0]! : other;
          const expected = presented === '' ? 'missing_key' : keys.includes(presented) ? undefined : 'wrong_key';
          assert.equal(checker.check('127.0.0.1', presented), expected);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

describe('the gateway never sends a request to a host the config does not name', () => {
  let routed: TestServer[];
  let outside: TestServer;
  let gw: TestGateway;
  let port: number;

  before(async () => {
    routed = [await startServer((_req, res) => res.end('a')), await startServer((_req, res) => res.end('b'))];
    outside = await startServer((_req, res) => res.end('outside'));
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
routes:
  - { name: a, match: { pathPrefix: /a }, upstream: "${routed[0]!.url}/base-a", stripPrefix: true, auth: { type: none } }
  - { name: b, match: { pathPrefix: /b, host: b.internal }, upstream: "${routed[1]!.url}/base-b", auth: { type: none } }
`);
    port = Number(new URL(gw.url).port);
  });

  after(async () => {
    await gw.stop();
    for (const server of [...routed, outside]) await server.close();
  });

  async function send(request: string): Promise<void> {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume();
    await once(socket, 'connect');
    socket.write(request, 'latin1');
    await once(socket, 'close');
  }

  it('for random paths, absolute-form targets and Host headers', async () => {
    const outsideHost = `127.0.0.1:${outside.port}`;
    const hosts = fc.constantFrom(
      outsideHost,
      'evil.example',
      'b.internal',
      'B.INTERNAL:1',
      `localhost:${outside.port}`,
      new URL(routed[0]!.url).host,
    );
    // Mostly paths that start like a route's prefix, so that many requests are forwarded and checked;
    // a third of them are well formed, since most escape-provoking paths are refused before routing.
    const hostile = fc
      .tuple(fc.constantFrom('/a', '/b', '/a/..', '/b/%2e%2e', '//a', '/%2e%2e', ''), rawPath)
      .map(([start, rest]) => `${start}${rest}`.replace(/[^\x21-\x7e]/g, ''))
      .filter((p) => p !== '');
    const wellFormed = fc
      .tuple(fc.constantFrom('/a', '/b'), fc.array(fc.constantFrom('a', 'b', 'api', 'v1', 'a.b', '~'), { maxLength: 3 }))
      .map(([start, parts]) => [start, ...parts].join('/'));
    const path = fc.oneof({ weight: 2, arbitrary: hostile }, { weight: 1, arbitrary: wellFormed });
    const target = fc.oneof(
      path,
      fc.tuple(fc.constantFrom('http://', 'https://', 'HTTP://'), hosts, path).map(([scheme, host, p]) => `${scheme}${host}${p}`),
      fc.tuple(hosts, path).map(([host, p]) => `//${host}${p}`),
    );
    await fc.assert(
      fc.asyncProperty(target, hosts, fc.constantFrom('GET', 'POST', 'OPTIONS', 'DELETE'), async (requestTarget, host, method) => {
        await send(`${method} ${requestTarget} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        assert.equal(outside.received.length, 0, `${method} ${requestTarget} (Host ${host}) reached a host the config does not name`);
        for (const [server, base] of [
          [routed[0]!, '/base-a'],
          [routed[1]!, '/base-b'],
        ] as const) {
          for (const seen of server.received) {
            assert.ok(within(base, seen.url.split('?')[0]!), `${seen.url} is outside ${base}`);
            assert.equal(seen.headers.host, new URL(server.url).host);
          }
        }
      }),
      // One request for each route always runs, whatever the seed, so the checks below cannot depend on luck.
      {
        numRuns: 300,
        examples: [
          ['/a/x', 'evil.example', 'GET'],
          ['/b/x', 'b.internal', 'POST'],
        ],
      },
    );
    assert.ok(routed[0]!.received.length > 0, 'no generated request was forwarded at all: the property proved nothing');
    assert.ok(routed[1]!.received.length > 0, 'no generated request reached the host-matched route');
  });
});
