/**
 * The shared cache's entries in a real Redis: encrypted at rest, unreadable entries read as misses
 * (another key, a damaged value), Redis unreachable costs nothing but per-replica fetches, and the
 * config refuses unusable keys and URLs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { Metrics } from '../src/observability/metrics.js';
import { RedisTokenStore } from '../src/cache/redis-store.js';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { createLogger } from '../src/observability/log.js';
import { tokenKey, type CachedToken } from '../src/tokens/types.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { requireProgram } from './support/programs.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { json, startEchoUpstream, startServer, type TestServer } from './support/servers.js';

const KEY_1 = randomBytes(32).toString('base64');
const KEY_2 = randomBytes(32).toString('hex');
/** Short enough to see a refresh; with no expiry skew it is refreshed ahead at 2.25-2.7 s. */
const SHORT_LIFETIME_S = 3;
/** Past one 250 ms command time-out, well within the three a fetch tolerates. */
const PAUSE_MS = 600;

interface Cache {
  url: string;
  prefix: string;
  key?: string;
}

function config(tokenUrl: string, upstream: string, cache: Cache): string {
  return `
logging: { accessLog: off }
secrets:
  client-secret: { value: store-secret }
  cache-key: { value: "${cache.key ?? ''}" }
cache:
  store: redis
  redis: { url: "${cache.url}", keyPrefix: "${cache.prefix}" }
  ${cache.key === undefined ? 'allowPlaintext: true' : 'encryptionKey: { secret: cache-key }'}
connections:
  fake:
    clientId: store-client
    tokenUrl: ${tokenUrl}
    clientSecret: { secret: client-secret }
    token: { expirySkewSeconds: 0 }
routes:
${['rest', 'rotate', 'damaged', 'plain', 'down', 'short', 'frozen', 'paused']
  .map(
    (scope) =>
      `  - { name: ${scope}, match: { pathPrefix: /${scope} }, upstream: "${upstream}", stripPrefix: true, auth: { connection: fake, params: { scope: ${scope} } } }`,
  )
  .join('\n')}
`;
}

async function cacheErrors(gw: TestGateway, operation: string): Promise<number> {
  return (await gw.gateway.metrics.cacheErrors.get()).values.find((v) => v.labels.operation === operation)?.value ?? 0;
}

describe('shared cache entries in Redis', requireProgram('redis-server', 'redis-server'), () => {
  let redis: RedisServer;
  let raw: Redis;
  let tokenEndpoint: TestServer;
  let upstream: TestServer;
  const gateways: TestGateway[] = [];
  const calls: { scope: string; at: number }[] = [];

  /** A gateway on a key prefix of the test's own, so the test's entry is the only one under it. */
  const start = async (prefix: string, cache: Partial<Cache> = {}) => {
    const gw = await startGateway(config(`${tokenEndpoint.url}/token`, upstream.url, { url: redis.url, prefix, key: KEY_1, ...cache }));
    gateways.push(gw);
    return gw;
  };
  const get = async (gw: TestGateway, path: string) => {
    const response = await fetch(`${gw.url}${path}`);
    assert.equal(response.status, 200);
    return ((await response.json()) as { authorization: string }).authorization.replace(/^Bearer /, '');
  };
  const entries = async (prefix: string) => {
    const keys = await raw.keys(`${prefix}token:*`);
    return Promise.all(keys.map(async (key) => ({ key, value: (await raw.get(key))! })));
  };
  const newPrefix = () => `store-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
    tokenEndpoint = await startServer((_req, res, body) => {
      const scope = new URLSearchParams(body.toString()).get('scope') ?? '';
      calls.push({ scope, at: Date.now() });
      const expiresIn = scope === 'short' ? SHORT_LIFETIME_S : 300;
      json(res, 200, {
        access_token: `secret-token-${scope}-${randomBytes(16).toString('hex')}`,
        token_type: 'Bearer',
        expires_in: expiresIn,
      });
    });
    upstream = await startEchoUpstream();
  });

  after(async () => {
    for (const gw of gateways) await gw.stop();
    raw?.disconnect();
    await tokenEndpoint?.close();
    await upstream?.close();
    await redis?.stop();
  });

  it('keeps the access token out of the stored value', async () => {
    const prefix = newPrefix();
    const token = await get(await start(prefix), '/rest');
    const [entry, extra] = await entries(prefix);
    assert.equal(extra, undefined);
    assert.ok(!entry!.value.includes(token), 'the token is stored in clear');
    assert.ok(!entry!.value.includes('secret-token'), 'part of the token is stored in clear');
  });

  it('reads an entry written under another encryption key as a miss, not a crash', async () => {
    const prefix = newPrefix();
    const before = tokenEndpoint.received.length;
    const first = await get(await start(prefix), '/rotate');
    const rotated = await start(prefix, { key: KEY_2 });
    const second = await get(rotated, '/rotate');
    assert.notEqual(second, first);
    assert.equal(tokenEndpoint.received.length - before, 2);
    // A rotation is expected, not damage: nothing counted.
    assert.equal(await cacheErrors(rotated, 'decode'), 0);
  });

  it('reads a damaged entry as a miss and counts it', async () => {
    const prefix = newPrefix();
    const first = await get(await start(prefix), '/damaged');
    const [entry] = await entries(prefix);
    const parts = entry!.value.split('.');
    parts[3] = Buffer.from(Buffer.from(parts[3]!, 'base64url').map((byte) => byte ^ 0xff)).toString('base64url');
    await raw.set(entry!.key, parts.join('.'), 'KEEPTTL');
    const fresh = await start(prefix);
    const second = await get(fresh, '/damaged');
    assert.notEqual(second, first);
    assert.equal(await cacheErrors(fresh, 'decode'), 1);
  });

  it('stores JSON only when allowPlaintext is set', async () => {
    const prefix = newPrefix();
    const token = await get(await start(prefix, { key: undefined }), '/plain');
    const [entry] = await entries(prefix);
    assert.ok(entry!.value.includes(`"${token}"`));
  });

  it('refreshes a token ahead of its expiry once for the fleet', async () => {
    const prefix = newPrefix();
    const [a, b] = [await start(prefix), await start(prefix)];
    const first = await get(a, '/short');
    assert.equal(await get(b, '/short'), first);
    // Refresh ahead runs on traffic: keep both replicas busy until both serve the new token.
    const served = new Set<string>();
    while (served.size < 2) {
      const [fromA, fromB] = await Promise.all([get(a, '/short'), get(b, '/short')]);
      if (fromA !== first) served.add('a');
      if (fromB !== first) served.add('b');
    }
    const [obtained, refreshed, extra] = calls.filter((c) => c.scope === 'short');
    assert.equal(extra, undefined, 'one refresh for both replicas');
    assert.ok(refreshed!.at - obtained!.at < SHORT_LIFETIME_S * 1000, 'refreshed before the token expired');
  });

  it('serves every request when Redis stops answering, after a short time-out', async () => {
    const gw = await start(newPrefix());
    redis.freeze();
    try {
      const tokens = await Promise.all([1, 2, 3].map(() => get(gw, '/frozen')));
      assert.equal(new Set(tokens).size, 1);
      assert.ok((await cacheErrors(gw, 'read')) >= 1);
    } finally {
      redis.thaw();
    }
  });

  it('keeps two replicas to one token request when Redis answers after the time-out', async () => {
    const prefix = newPrefix();
    const [a, b] = [await start(prefix), await start(prefix)];
    // Scripts count as writes: every cache call of both replicas waits out the pause, and the
    // first ones give up after 250 ms. A late answer is not a dead Redis: fetching alone on it
    // would cost the fleet one token request per replica.
    await raw.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE');
    const [fromA, fromB] = await Promise.all([get(a, '/paused'), get(b, '/paused')]);
    assert.ok((await cacheErrors(a, 'read')) + (await cacheErrors(b, 'read')) >= 2, 'cache calls timed out during the pause');
    assert.equal(fromB, fromA);
    assert.equal(calls.filter((c) => c.scope === 'paused').length, 1);
  });

  it('serves every request when Redis is unreachable, counting the failed calls', async () => {
    const closed = await startRedis();
    await closed.stop();
    const before = tokenEndpoint.received.length;
    const gw = await start(newPrefix(), { url: closed.url });
    const tokens = await Promise.all([1, 2, 3].map(() => get(gw, '/down')));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(await get(gw, '/down'), tokens[0]);
    assert.equal(tokenEndpoint.received.length - before, 1);
    assert.ok((await cacheErrors(gw, 'read')) >= 1);
  });

  it('makes one token request when another replica stores the token between its read and its lease', async () => {
    // Two stores as two replicas. The second one asks a moment after the first, so its read can
    // miss while its lease comes after the first replica stored the token and gave the lease back:
    // the lease must not be granted over a token it has not read (one run in three fetched twice).
    const prefix = newPrefix();
    const connection = (
      await buildConfigTextOnly(config(`${tokenEndpoint.url}/token`, upstream.url, { url: redis.url, prefix }), 'gateway.yaml', {})
    ).connections.get('fake')!;
    const log = createLogger({ level: 'silent' });
    const replica = () =>
      new RedisTokenStore({
        topology: { kind: 'server', url: redis.url },
        keyPrefix: prefix,
        encryptionKey: undefined,
        metrics: new Metrics(),
        log,
        forgetLocal: () => {},
      });
    const [a, b] = [replica(), replica()];
    try {
      assert.ok((await a.whenConnected()) && (await b.whenConnected()));
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), async (lateByMs, fetchMs) => {
          const key = tokenKey('fake', { run: String(run++) });
          let fetches = 0;
          const load = async (): Promise<CachedToken> => {
            fetches++;
            await delay(fetchMs);
            const now = Date.now();
            return {
              accessToken: randomBytes(8).toString('hex'),
              scope: undefined,
              obtainedAt: now,
              expiresAt: now + 60_000,
              usableUntil: now + 60_000,
              refreshAt: now + 45_000,
            };
          };
          const [fromA, fromB] = await Promise.all([
            a.fetch(key, connection, load),
            delay(lateByMs).then(() => b.fetch(key, connection, load)),
          ]);
          assert.equal(fetches, 1);
          assert.equal(fromB.accessToken, fromA.accessToken);
        }),
        { numRuns: 100 },
      );
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('names a damaged entry by its code in the log: CACHE_ENTRY_UNREADABLE, CACHE_ENTRY_IMPLAUSIBLE', async () => {
    const prefix = newPrefix();
    const connection = (
      await buildConfigTextOnly(config(`${tokenEndpoint.url}/token`, upstream.url, { url: redis.url, prefix }), 'gateway.yaml', {})
    ).connections.get('fake')!;
    const lines: Array<Record<string, unknown>> = [];
    const store = new RedisTokenStore({
      topology: { kind: 'server', url: redis.url },
      keyPrefix: prefix,
      encryptionKey: undefined,
      metrics: new Metrics(),
      log: createLogger({
        level: 'debug',
        destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
      }),
      forgetLocal: () => {},
    });
    try {
      assert.ok(await store.whenConnected());
      const key = tokenKey('fake', {});
      const now = Date.now();
      const token = {
        accessToken: 'a'.repeat(16),
        scope: undefined,
        obtainedAt: now,
        expiresAt: now + 60_000,
        usableUntil: now + 60_000,
        refreshAt: now + 45_000,
      };
      await store.fetch(key, connection, async () => token);
      const [entry] = await entries(prefix);
      const [fingerprint, stored] = [entry!.value.slice(0, entry!.value.indexOf(':')), entry!.value.slice(entry!.value.indexOf(':') + 1)];
      const codes = async (value: string): Promise<unknown[]> => {
        await raw.set(entry!.key, `${fingerprint}:${value}`, 'KEEPTTL');
        lines.length = 0;
        assert.equal(await store.get(key, connection), undefined);
        return lines.filter((line) => line.event === 'cache_entry_unreadable').map((line) => line.errorCode);
      };
      assert.deepEqual(await codes('p1.{not json'), ['CACHE_ENTRY_UNREADABLE']);
      const times = JSON.parse(stored.slice('p1.'.length)) as Record<string, number>;
      // Obtained after it stops being usable: impossible, whoever wrote it.
      assert.deepEqual(await codes(`p1.${JSON.stringify({ ...times, o: times.u! + 1_000 })}`), ['CACHE_ENTRY_IMPLAUSIBLE']);
    } finally {
      await store.close();
    }
  });
});

describe('cache config', () => {
  const base = (key: string, url = 'redis://127.0.0.1:6379') => `
secrets: { cache-key: { value: "${key}" } }
cache: { store: redis, redis: { url: "${url}" }, encryptionKey: { secret: cache-key } }
`;
  const problems = async (text: string) => {
    try {
      await buildConfigTextOnly(text, 'gateway.yaml');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, 'CONFIG_INVALID');
      return error.problems.map((p) => p.path);
    }
    return [];
  };

  it('accepts a 32-byte key as base64 or hex', async () => {
    assert.deepEqual(await problems(base(KEY_1)), []);
    assert.deepEqual(await problems(base(KEY_2)), []);
  });

  it('refuses a key of another length, naming the key path', async () => {
    assert.deepEqual(await problems(base(randomBytes(16).toString('base64'))), ['cache.encryptionKey.secret']);
    assert.deepEqual(await problems(base('not a key')), ['cache.encryptionKey.secret']);
  });

  it('refuses a URL that is not redis: or rediss:', async () => {
    assert.deepEqual(await problems(base(KEY_1, 'http://127.0.0.1:6379')), ['cache.redis.url']);
  });

  const ha = (redis: string) => `
secrets: { cache-key: { value: "${KEY_1}" }, redis-pw: { value: pw } }
cache: { store: redis, redis: ${redis}, encryptionKey: { secret: cache-key } }
`;

  it('accepts a Sentinel set or a Cluster, passwords as secrets, TLS as for token endpoints', async () => {
    const sentinel = await buildConfigTextOnly(
      ha('{ sentinel: { name: mymaster, nodes: ["10.0.0.1:26379", "[::1]:26380"], password: { secret: redis-pw }, tls: {} } }'),
      'gateway.yaml',
    );
    const topology = sentinel.cache.redis.topology;
    assert.equal(topology.kind, 'sentinel');
    assert.ok(topology.kind === 'sentinel');
    assert.deepEqual(topology.nodes, [
      { host: '10.0.0.1', port: 26379 },
      { host: '::1', port: 26380 },
    ]);
    assert.equal(topology.password?.reveal(), 'pw');
    assert.ok(topology.tls !== undefined);
    const cluster = await buildConfigTextOnly(ha('{ cluster: { nodes: ["10.0.1.1:7000"], username: gw } }'), 'gateway.yaml');
    assert.equal(cluster.cache.redis.topology.kind, 'cluster');
    const plain = await buildConfigTextOnly(ha('{}'), 'gateway.yaml');
    assert.deepEqual(plain.cache.redis.topology, { kind: 'server', url: 'redis://127.0.0.1:6379' });
  });

  it('refuses two of url, sentinel and cluster at once, naming the key path', async () => {
    assert.deepEqual(await problems(ha('{ url: "redis://a:6379", cluster: { nodes: ["a:7000"] } }')), ['cache.redis.cluster']);
    assert.deepEqual(await problems(ha('{ sentinel: { name: m, nodes: ["a:26379"] }, cluster: { nodes: ["a:7000"] } }')), [
      'cache.redis.cluster',
    ]);
  });

  it('refuses a node that is not host:port, an unknown password secret, and a brace in a cluster key prefix', async () => {
    assert.deepEqual(await problems(ha('{ sentinel: { name: m, nodes: ["a"] } }')), ['cache.redis.sentinel.nodes[0]']);
    assert.deepEqual(await problems(ha('{ cluster: { nodes: ["a:70000"] } }')), ['cache.redis.cluster.nodes[0]']);
    assert.deepEqual(await problems(ha('{ cluster: { nodes: ["a:7000"], password: { secret: nope } } }')), [
      'cache.redis.cluster.password.secret',
    ]);
    assert.deepEqual(await problems(ha('{ cluster: { nodes: ["a:7000"] }, keyPrefix: "tg{x}:" }')), ['cache.redis.keyPrefix']);
  });
});
