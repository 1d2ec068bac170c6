/**
 * The semantic checks (config/semantic.ts) one by one: each problem at its key path with its
 * message, each warning, and the checked config they build (routes normalised and frozen, access
 * policies, key pairs, secret files). In process, through buildConfigTextOnly: no CLI, no sockets.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { encodeKey, selfSignedCertificate } from './support/keys.js';
import { requireProgram } from './support/programs.js';

const ENV = { S: 'client-secret', K: 'an-api-key' };
const CONNECTION = 'c: { clientId: id, tokenUrl: https://auth.example/token, clientSecret: { secret: s } }';

/** A config with one secret `s`, connection `c`, and the routes (YAML list items) given. */
function yaml({ routes = [ROUTE], secrets = '', connections = '', extra = '' } = {}): string {
  return [
    `secrets:\n  s: { env: S }\n  k: { env: K }${extra.includes('{ secret: ck }') ? '\n  ck: { env: CACHE_KEY }' : ''}${secrets}`,
    `connections:\n  ${CONNECTION}${connections}`,
    `routes:\n${routes.map((r) => `  - ${r}`).join('\n')}`,
    extra,
  ].join('\n');
}
const ROUTE = '{ name: r, match: { pathPrefix: /r }, upstream: https://api.example, auth: { connection: c } }';
const route = (fields: string, name = 'r') => `{ name: ${name}, match: { pathPrefix: /r }, upstream: https://api.example, ${fields} }`;

const CACHE_KEY = Buffer.alloc(32, 7).toString('base64');
const ENCRYPTED_REDIS = 'cache: { store: redis, encryptionKey: { secret: ck } }';

const load = (text: string, env: NodeJS.ProcessEnv = ENV, file = 'gateway.yaml') => buildConfigTextOnly(text, file, { env });

/** Every problem as `path: message`. */
async function problems(text: string, env: NodeJS.ProcessEnv = ENV): Promise<string[]> {
  try {
    await load(text, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return assert.fail('the config was accepted');
}

async function problemAt(text: string, path: string): Promise<string> {
  const found = (await problems(text)).filter((p) => p.startsWith(`${path}: `));
  assert.equal(found.length, 1, `one problem at ${path}; got ${found.join(' | ')}`);
  return found[0]!.slice(path.length + 2);
}

describe('secrets', () => {
  it('warns about an inline secret value, and only about that one', async () => {
    const config = await load(yaml({ secrets: '\n  inline: { value: plain }' }));
    assert.deepEqual(config.warnings, ['secrets.inline is an inline value; use env or file outside development']);
    assert.ok(Object.isFrozen(config.warnings));
  });

  it('an unknown secret is refused at its key path, naming the known ones', async () => {
    const text = yaml().replace('clientSecret: { secret: s }', 'clientSecret: { secret: nope }');
    assert.equal(
      await problemAt(text, 'connections.c.clientSecret.secret'),
      'unknown secret: no entry of this name under secrets (known: s, k)',
    );
  });

  it('names none when there are no secrets at all', async () => {
    const text = `routes:\n  - ${route('auth: { type: none }, access: { apiKeys: [{ secret: k }] }')}`;
    assert.equal(
      await problemAt(text, 'routes[0].access.apiKeys[0].secret'),
      'unknown secret: no entry of this name under secrets (known: none)',
    );
  });

  it('lists each file secret by its absolute path, relative ones from the config file folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokengate-semantic-'));
    mkdirSync(join(dir, 'keys'));
    writeFileSync(join(dir, 'keys', 'f.txt'), 'from-file');
    writeFileSync(join(dir, 'abs.txt'), 'from-file');
    const text = yaml({ secrets: `\n  f: { file: keys/f.txt }\n  abs: { file: ${join(dir, 'abs.txt')} }` });
    const config = await load(text, ENV, join(dir, 'gateway.yaml')).finally(() => rmSync(dir, { recursive: true }));
    assert.deepEqual(
      [...config.secretFiles],
      [
        ['f', join(dir, 'keys', 'f.txt')],
        ['abs', join(dir, 'abs.txt')],
      ],
    );
  });
});

describe('access policies', () => {
  it('builds the policy: header in lower case, the keys, a copy of allowFrom, all frozen', async () => {
    const config = await load(
      yaml({ routes: [route('auth: { type: none }, access: { header: X-Api-Key, apiKeys: [{ secret: k }], allowFrom: [10.0.0.0/8] }')] }),
    );
    const access = config.routes[0]!.access!;
    assert.equal(access.header, 'x-api-key');
    assert.deepEqual(
      access.apiKeys.map((s) => s.reveal()),
      ['an-api-key'],
    );
    assert.deepEqual(access.allowFrom, ['10.0.0.0/8']);
    assert.ok(Object.isFrozen(access) && Object.isFrozen(access.apiKeys) && Object.isFrozen(access.allowFrom));
    assert.equal(config.access, undefined, 'no top-level policy when none is configured');
  });

  it('a top-level policy is checked and built like a route policy', async () => {
    const config = await load(yaml({ extra: 'access: { allowFrom: [127.0.0.1] }' }));
    assert.deepEqual(config.access?.allowFrom, ['127.0.0.1']);
    assert.deepEqual(config.access?.apiKeys, []);
    assert.match(
      await problemAt(yaml({ extra: 'access: { header: x }' }), 'access'),
      /^an access policy needs apiKeys, allowFrom, or both$/,
    );
  });

  it('refuses a policy with neither keys nor addresses, and accepts either alone', async () => {
    assert.equal(
      await problemAt(yaml({ routes: [route('auth: { type: none }, access: { apiKeys: [], allowFrom: [] }')] }), 'routes[0].access'),
      'an access policy needs apiKeys, allowFrom, or both',
    );
    await load(yaml({ routes: [route('auth: { type: none }, access: { apiKeys: [{ secret: k }] }')] }));
    await load(yaml({ routes: [route('auth: { type: none }, access: { allowFrom: [::1] }')] }));
  });

  it('a bad address is refused at its index in allowFrom', async () => {
    const text = yaml({ routes: [route('auth: { type: none }, access: { allowFrom: [10.0.0.0/8, not-an-address] }')] });
    assert.ok((await problems(text)).some((p) => p.startsWith('routes[0].access.allowFrom[1]: ')));
  });

  it('a bad address is reported together with the other semantic problems, not after them', async () => {
    const text = yaml({ routes: [ROUTE, route('auth: { type: none }, access: { allowFrom: [not-an-address] }')] });
    assert.deepEqual(await problems(text), [
      'routes[1].name: duplicate route name "r" (also routes[0])',
      'routes[1].access.allowFrom[0]: "not-an-address" is not an IPv4 or IPv6 address or CIDR block',
    ]);
  });

  it('a bad header name is refused at access.header', async () => {
    const text = yaml({ routes: [route('auth: { type: none }, access: { header: "x key", allowFrom: [::1] }')] });
    assert.ok((await problems(text)).some((p) => p.startsWith('routes[0].access.header: ')));
  });

  it('an unknown key secret is refused at its index, and the known ones are still built', async () => {
    const text = yaml({ routes: [route('auth: { type: none }, access: { apiKeys: [{ secret: k }, { secret: gone }] }')] });
    assert.ok((await problems(text)).some((p) => p.startsWith('routes[0].access.apiKeys[1].secret: unknown secret')));
  });
});

describe('TLS verification', () => {
  it('refuses a CA bundle next to insecureSkipVerify, and warns about skipping verification', async () => {
    const both = yaml({ routes: [route('auth: { type: none }, tls: { ca: s, insecureSkipVerify: true }')] });
    assert.ok(
      (await problems(both)).includes('routes[0].tls.ca: a CA bundle has no effect with insecureSkipVerify: true; remove one of them'),
    );
    const config = await load(yaml({ routes: [route('auth: { type: none }, tls: { insecureSkipVerify: true }')] }));
    assert.deepEqual(config.warnings, [
      "SECURITY: routes[0].tls.insecureSkipVerify is true: the server's certificate is not verified, so anyone on the network path can impersonate it",
    ]);
  });

  it('a CA that is not PEM is refused at tls.ca; an unknown one only as unknown', async () => {
    const bad = await problems(yaml({ routes: [route('auth: { type: none }, tls: { ca: s }')] }));
    assert.deepEqual(bad.filter((p) => p.startsWith('routes[0].tls.ca: ')).length, 1, bad.join(' | '));
    const unknown = await problems(yaml({ routes: [route('auth: { type: none }, tls: { ca: gone }')] }));
    assert.deepEqual(
      unknown.filter((p) => p.startsWith('routes[0].tls.ca: ')),
      ['routes[0].tls.ca: unknown secret: no entry of this name under secrets (known: s, k)'],
    );
  });

  it('no tls settings, no verification object and no warning', async () => {
    const config = await load(yaml());
    assert.equal(config.routes[0]!.tls, undefined);
    assert.equal(config.routes[0]!.tlsCredentials, undefined);
    assert.deepEqual(config.warnings, []);
  });
});

describe('client certificate and key', requireProgram('openssl', 'openssl'), () => {
  const one = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const env = {
    ...ENV,
    CERT: selfSignedCertificate(one.privateKey),
    KEY: encodeKey(one.privateKey, 'pkcs8'),
    OTHER: encodeKey(other.privateKey, 'pkcs8'),
  };
  const secrets = '\n  cert: { env: CERT }\n  key: { env: KEY }\n  other: { env: OTHER }';
  const withTls = (tls: string) => yaml({ secrets, routes: [route(`auth: { type: none }, tls: ${tls}`)] });

  it('a matching pair is built and frozen', async () => {
    const config = await load(withTls('{ certificate: cert, key: key }'), env);
    const pair = config.routes[0]!.tlsCredentials!;
    assert.equal(pair.certificate.reveal(), env.CERT);
    assert.equal(pair.key.reveal(), env.KEY);
    assert.ok(Object.isFrozen(pair));
  });

  it('a CA bundle alone verifies, with no warning', async () => {
    const config = await load(withTls('{ ca: cert }'), env);
    assert.notEqual(config.routes[0]!.tls, undefined);
    assert.deepEqual(config.warnings, []);
  });

  it('one without the other is refused at tls', async () => {
    for (const tls of ['{ certificate: cert }', '{ key: key }']) {
      assert.deepEqual(await problems(withTls(tls), env), ['routes[0].tls: set both certificate and key, or neither']);
    }
  });

  it('a key that does not match the certificate is refused at one of the two', async () => {
    const found = await problems(withTls('{ certificate: cert, key: other }'), env);
    assert.equal(found.length, 1, found.join(' | '));
    assert.match(found[0]!, /^routes\[0\]\.tls\.(certificate|key): /);
  });

  it('an unknown certificate or key is refused as unknown, nothing else', async () => {
    assert.deepEqual(await problems(withTls('{ certificate: gone, key: key }'), env), [
      'routes[0].tls.certificate: unknown secret: no entry of this name under secrets (known: s, k, cert, key, other)',
    ]);
    assert.deepEqual(await problems(withTls('{ certificate: cert, key: gone }'), env), [
      'routes[0].tls.key: unknown secret: no entry of this name under secrets (known: s, k, cert, key, other)',
    ]);
  });

  it('the listener pair is checked the same way and lands in listen.tls', async () => {
    const listen = (key: string) => yaml({ secrets, extra: `listen: { tls: { certificate: cert, key: ${key} } }` });
    assert.equal((await load(listen('key'), env)).listen.tls?.key.reveal(), env.KEY);
    assert.equal((await problems(listen('other'), env)).filter((p) => p.startsWith('listen.tls.')).length, 1);
  });
});

describe('connections', () => {
  it('DPoP with the redis store and a key of its own is accepted', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const text = yaml({
      secrets: '\n  dk: { env: DPOP_KEY }',
      connections: '\n  d: { clientId: id, tokenUrl: https://auth.example/token, clientSecret: { secret: s }, dpop: { key: dk } }',
      extra: 'cache: { store: redis, allowPlaintext: true }',
    });
    const config = await load(text, { ...ENV, DPOP_KEY: encodeKey(privateKey, 'pkcs8') });
    assert.ok(config.connections.has('d'));
  });

  it('DPoP with the redis store needs a key the replicas share', async () => {
    const text = yaml({
      connections: '\n  d: { clientId: id, tokenUrl: https://auth.example/token, clientSecret: { secret: s }, dpop: {} }',
      extra: 'cache: { store: redis, allowPlaintext: true }',
    });
    assert.equal(
      await problemAt(text, 'connections.d.dpop.key'),
      'required with cache.store: redis (replicas sharing tokens must share the key they are bound to)',
    );
    await load(text.replace('store: redis', 'store: memory'));
  });

  it('managed signing keys: refused with redis and no encryption key, a warning with memory', async () => {
    const managed = '\n  m: { clientId: id, tokenUrl: https://auth.example/token, privateKeyJwt: { managed: {} } }';
    const redis = yaml({ connections: managed, extra: 'cache: { store: redis, allowPlaintext: true }' });
    assert.equal(
      await problemAt(redis, 'connections.m.privateKeyJwt.managed'),
      'with cache.store: redis the managed keys are shared through Redis, encrypted: ' +
        'set cache.encryptionKey (allowPlaintext does not cover private keys)',
    );
    const memory = await load(yaml({ connections: managed }));
    assert.deepEqual(memory.warnings, [
      'connections.m.privateKeyJwt.managed: with cache.store: memory each process makes its own keys; ' +
        'replicas behind one JWKS URL need cache.store: redis to sign with keys the JWKS publishes',
    ]);
    const encrypted = await load(yaml({ connections: managed, extra: ENCRYPTED_REDIS }), { ...ENV, CACHE_KEY });
    assert.deepEqual(encrypted.warnings, [], 'redis with an encryption key: shared keys, nothing to warn about');
  });
});

describe('routes', () => {
  it('refuses a duplicate name, pointing at the earlier one', async () => {
    const text = yaml({ routes: [ROUTE, route('auth: { type: none }', 'other'), route('auth: { type: none }')] });
    assert.equal(await problemAt(text, 'routes[2].name'), 'duplicate route name "r" (also routes[0])');
  });

  it('refuses an upstream with a query, a fragment, a user or a password', async () => {
    for (const upstream of ['https://api.example/?q=1', 'https://api.example/#f', 'https://u@api.example', 'https://:p@api.example']) {
      const text = yaml({ routes: [`{ name: r, match: { pathPrefix: /r }, upstream: "${upstream}", auth: { type: none } }`] });
      assert.equal(await problemAt(text, 'routes[0].upstream'), 'an upstream is a base URL: no query, fragment or user info', upstream);
    }
  });

  it('an http: upstream without tls is accepted', async () => {
    const config = await load(
      yaml({ routes: ['{ name: r, match: { pathPrefix: /r }, upstream: http://api.example, auth: { type: none } }'] }),
    );
    assert.equal(config.routes[0]!.upstreamUrl.protocol, 'http:');
  });

  it("a route the schema refused is not checked again (its problems are the schema's alone)", async () => {
    const found = await problems(
      yaml({ routes: ['{ name: r, match: { pathPrefix: /r }, auth: { type: none } }', ROUTE.replace('name: r', 'name: r2')] }),
    );
    assert.deepEqual(
      found.map((p) => p.split(':')[0]),
      ['routes[0].upstream'],
    );
  });

  it('tls on an http: upstream is refused', async () => {
    const text = yaml({ routes: ['{ name: r, match: { pathPrefix: /r }, upstream: http://api.example, auth: { type: none }, tls: {} }'] });
    assert.equal(await problemAt(text, 'routes[0].tls'), 'applies to an https: upstream only');
  });

  it('client-connection auth needs a known connection; none takes neither connection nor params', async () => {
    assert.equal(
      await problemAt(yaml({ routes: [route('auth: {}')] }), 'routes[0].auth.connection'),
      'required when auth.type is client-connection',
    );
    assert.equal(
      await problemAt(
        yaml({ routes: [route('auth: { connection: x }')], connections: `\n  ${CONNECTION.replace('c:', 'd:')}` }),
        'routes[0].auth.connection',
      ),
      'unknown connection "x"; known: c, d',
    );
    assert.equal(
      await problemAt(`routes:\n  - ${route('auth: { connection: x }')}`, 'routes[0].auth.connection'),
      'unknown connection "x"; known: none',
    );
    for (const auth of ['{ type: none, connection: c }', '{ type: none, params: { audience: a } }']) {
      assert.equal(
        await problemAt(yaml({ routes: [route(`auth: ${auth}`)] }), 'routes[0].auth'),
        'auth.type none takes no connection or params',
      );
    }
  });

  it("a route's params override its connection's, key by key", async () => {
    const text = yaml({ routes: [route('auth: { connection: c, params: { audience: route, scope: s } }')] }).replace(
      'clientSecret: { secret: s } }',
      'clientSecret: { secret: s }, params: { audience: conn, resource: r } }',
    );
    assert.deepEqual({ ...(await load(text)).routes[0]!.effectiveParams }, { audience: 'route', resource: 'r', scope: 's' });
    assert.deepEqual({ ...(await load(yaml({ routes: [route('auth: { type: none }')] }))).routes[0]!.effectiveParams }, {});
  });

  it('drops trailing slashes from a path prefix, and keeps / for one of slashes only', async () => {
    const prefix = async (p: string) =>
      (await load(yaml({ routes: [`{ name: r, match: { pathPrefix: "${p}" }, upstream: https://api.example, auth: { type: none } }`] })))
        .routes[0]!.match.pathPrefix;
    assert.equal(await prefix('/api//'), '/api');
    assert.equal(await prefix('/api'), '/api');
    assert.equal(await prefix('///'), '/');
  });

  it('refuses a path prefix that normalisation would change', async () => {
    const text = yaml({ routes: ['{ name: r, match: { pathPrefix: /a/../b }, upstream: https://api.example, auth: { type: none } }'] });
    assert.match(await problemAt(text, 'routes[0].match.pathPrefix'), /^must be a normalised path/);
  });

  it('normalises the host (lower case, A-label) and refuses one with a port', async () => {
    const host = (h: string) =>
      yaml({ routes: [`{ name: r, match: { pathPrefix: /r, host: "${h}" }, upstream: https://api.example, auth: { type: none } }`] });
    assert.equal((await load(host('API.Bücher.example'))).routes[0]!.match.host, 'api.xn--bcher-kva.example');
    assert.ok((await problems(host('api.example:443'))).some((p) => p.startsWith('routes[0].match.host: ')));
  });

  it('upper-cases the methods, numbers the routes and freezes each deeply', async () => {
    const config = await load(
      yaml({
        routes: [
          ROUTE,
          '{ name: m, match: { pathPrefix: /m, methods: [get, Post] }, upstream: https://api.example, auth: { type: none } }',
        ],
      }),
    );
    const [first, second] = config.routes;
    assert.deepEqual(second!.match.methods, ['GET', 'POST']);
    assert.equal(first!.match.methods, undefined);
    assert.deepEqual(
      config.routes.map((r) => r.index),
      [0, 1],
    );
    assert.equal(second!.upstreamUrl.href, 'https://api.example/');
    assert.ok(
      Object.isFrozen(config.routes) && Object.isFrozen(second) && Object.isFrozen(second!.match) && Object.isFrozen(second!.match.methods),
    );
    assert.ok(Object.isFrozen(second!.timeouts) && Object.isFrozen(second!.effectiveParams));
  });
});

describe('the rest of the config', () => {
  it('refuses an admin allowedHosts entry that is not a host name, at its index', async () => {
    const text = yaml({ extra: 'admin: { allowedHosts: [ok.example, "bad host"] }' });
    const found = (await problems(text)).filter((p) => p.startsWith('admin.allowedHosts'));
    assert.equal(found.length, 1, found.join(' | '));
    assert.ok(found[0]!.startsWith('admin.allowedHosts[1]: '));
  });

  it('redis without an encryption key needs allowPlaintext', async () => {
    assert.match(await problemAt(yaml({ extra: 'cache: { store: redis }' }), 'cache.encryptionKey'), /^store: redis keeps tokens at rest/);
    await load(yaml({ extra: 'cache: { store: redis, allowPlaintext: true }' }));
    const encrypted = await load(yaml({ extra: ENCRYPTED_REDIS }), { ...ENV, CACHE_KEY });
    assert.equal(encrypted.cache.store, 'redis');
    assert.equal(encrypted.cache.encryptionKey?.reveal(), CACHE_KEY);
  });

  it('a problem about a key that is missing from the file is placed at the line of its parent', async () => {
    const text = yaml({
      routes: ['{ name: r, match: { pathPrefix: /r }, upstream: https://api.example,\n      auth: {} }'],
      extra: '\ncache: { store: redis }',
    });
    const found = await load(text).then(
      () => assert.fail('accepted'),
      (error: unknown) => (error as ConfigError).problems,
    );
    const lines = text.split('\n');
    const lineOf = (needle: string) => lines.findIndex((l) => l.includes(needle)) + 1;
    assert.equal(found.find((p) => p.path === 'routes[0].auth.connection')?.line, lineOf('auth: {}'));
    assert.equal(found.find((p) => p.path === 'cache.encryptionKey')?.line, lineOf('cache: { store: redis }'));
  });

  it('an encryption key naming an unknown secret is refused at its key path', async () => {
    assert.match(
      await problemAt(yaml({ extra: 'cache: { store: redis, encryptionKey: { secret: gone } }' }), 'cache.encryptionKey.secret'),
      /^unknown secret/,
    );
  });

  it('headersTimeoutMs may equal requestTimeoutMs but not exceed it', async () => {
    await load(yaml({ extra: 'listen: { headersTimeoutMs: 5000, requestTimeoutMs: 5000 }' }));
    assert.equal(
      await problemAt(yaml({ extra: 'listen: { headersTimeoutMs: 5001, requestTimeoutMs: 5000 }' }), 'listen.headersTimeoutMs'),
      'must not exceed requestTimeoutMs (5000)',
    );
  });

  it('the checked config is frozen, section by section, with tracing only when configured', async () => {
    const config = await load(yaml());
    assert.ok(
      Object.isFrozen(config) && Object.isFrozen(config.listen) && Object.isFrozen(config.logging) && Object.isFrozen(config.cache),
    );
    assert.equal(config.tracing, undefined);
    assert.equal(config.file, 'gateway.yaml');
    assert.equal(config.listen.tls, undefined);
    assert.equal(config.cache.encryptionKey, undefined);
    assert.equal(config.cache.store, 'memory');
    const traced = await load(yaml({ extra: 'tracing: { enabled: true }' }));
    assert.equal(traced.tracing?.enabled, true);
    assert.ok(Object.isFrozen(traced.tracing));
  });
});
