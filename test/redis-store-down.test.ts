/**
 * Every Redis gone: three gateway processes keep serving every caller from their own caches and
 * token requests, show the store down (tokengate_cache_store_up 0, one cache_store_down line each)
 * while /readyz stays ready, and share tokens again once Redis is back (cache_store_up, gauge 1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../src/observability/metrics.js';
import { RedisTokenStore } from '../src/cache/redis-store.js';
import { createLogger } from '../src/observability/log.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import type { AuthServerTransport } from '../src/tokens/endpoint.js';
import { TokenProvider } from '../src/tokens/provider.js';
import { tokenKey } from '../src/tokens/types.js';
import { FLEET_SIZE, startHaFleet, steadyTraffic, storeUp, waitForEvent, type HaFleet } from './support/ha-fleet.js';
import { requireProgram } from './support/programs.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { until } from './support/redis-ha.js';

const WARM = ['orders', 'billing'] as const;
const DURING = 'during-outage';
const BACK = 'after-outage';

describe('a fleet whose Redis is gone', requireProgram('redis-server', 'redis-server'), () => {
  let redis: RedisServer;
  let fleet: HaFleet;

  before(async () => {
    redis = await startRedis();
    fleet = await startHaFleet(`url: "${redis.url}"`, [...WARM, DURING, BACK]);
    await Promise.all(fleet.replicas.map((replica) => waitForEvent(replica, 'cache_store_up')));
  });

  after(async () => {
    await fleet?.stop();
    await redis?.stop();
  });

  it('serves every caller, shows the store down, stays ready, and shows it up again when Redis returns', async (t) => {
    for (const connection of WARM) for (let i = 0; i < FLEET_SIZE; i++) assert.equal((await fleet.get(i, connection)).status, 200);
    const traffic = steadyTraffic(fleet, WARM);
    const marks = fleet.replicas.map((replica) => replica.logs.length);
    await redis.stop();
    await Promise.all(fleet.replicas.map((replica, i) => waitForEvent(replica, 'cache_store_down', marks[i])));
    for (let i = 0; i < FLEET_SIZE; i++) {
      assert.equal(storeUp(await fleet.metrics(i)), 0);
      assert.equal((await fetch(`${fleet.replicas[i]!.admin}/readyz`)).status, 200, '/readyz does not depend on Redis');
    }
    // A token nobody has yet: each replica fetches its own, and every caller is served.
    const during = await Promise.all(Array.from({ length: 30 }, (_, i) => fleet.get(i % FLEET_SIZE, DURING)));
    assert.deepEqual(
      during.filter((a) => a.status !== 200),
      [],
    );
    assert.ok(fleet.tokenRequests(DURING) <= FLEET_SIZE, 'at most one token request per replica while the store is down');

    const restarted = fleet.replicas.map((replica) => replica.logs.length);
    await redis.start();
    await Promise.all(fleet.replicas.map((replica, i) => waitForEvent(replica, 'cache_store_up', restarted[i])));
    for (let i = 0; i < FLEET_SIZE; i++) await until('the gauge at 1', async () => storeUp(await fleet.metrics(i)) === 1);
    const back = await Promise.all(Array.from({ length: 60 }, (_, i) => fleet.get(i % FLEET_SIZE, BACK)));
    const stats = await traffic.stop();
    assert.deepEqual(
      back.filter((a) => a.status !== 200),
      [],
    );
    assert.equal(fleet.tokenRequests(BACK), 1, 'shared again: one token request for the fleet');
    assert.deepEqual(stats.failures, [], 'no caller got an error');
    // One line per transition: a single down and a single up per replica for this outage.
    for (const [i, replica] of fleet.replicas.entries()) {
      const events = replica.logs.slice(marks[i]).map((line) => line.event);
      assert.equal(events.filter((e) => e === 'cache_store_down').length, 1);
      assert.equal(events.filter((e) => e === 'cache_store_up').length, 1);
    }
    t.diagnostic(
      `all Redis gone: ${stats.served + during.length + back.length} callers served, ${stats.errors} errors, ` +
        `token requests ${JSON.stringify(Object.fromEntries([...WARM, DURING, BACK].map((c) => [c, fleet.tokenRequests(c)])))}`,
    );
  });
});

describe('refresh ahead while the store is down', requireProgram('redis-server', 'redis-server'), () => {
  it('two replicas do not refresh alone during the outage; once the store is back the fleet refreshes with one request', async () => {
    const redis = await startRedis();
    let requests = 0;
    const transport: AuthServerTransport = () => {
      requests++;
      const body = { access_token: `tok-${requests}`, token_type: 'Bearer', expires_in: 300 };
      return Promise.resolve({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });
    };
    const config = await buildConfigTextOnly(
      `
secrets: { s: { value: down-secret } }
connections:
  c: { clientId: gw, tokenUrl: "http://127.0.0.1:1/token", clientSecret: { secret: s } }
`,
      'down.yaml',
    );
    const keyPrefix = `down-${randomBytes(4).toString('hex')}:`;
    const replica = () => {
      const store = new RedisTokenStore({
        topology: { kind: 'server', url: redis.url },
        keyPrefix,
        encryptionKey: undefined,
        metrics: new Metrics(),
        log: createLogger({ level: 'silent' }),
        forgetLocal: () => undefined,
      });
      const observer = { tokenRequest: () => undefined, tokenFailure: () => undefined };
      return { store, provider: new TokenProvider(config.connections.values(), observer, store, { transport }) };
    };
    const replicas = [replica(), replica()];
    try {
      for (const { store } of replicas) assert.ok(await store.whenConnected());
      const key = tokenKey('c', {});
      const first = await replicas[0]!.provider.get(key);
      assert.equal((await replicas[1]!.provider.get(key)).accessToken, first.accessToken);
      assert.equal(requests, 1);

      // Past the refresh point, still usable (a replica's copy is re-based on Redis's TTL: a few ms apart).
      const later = first.refreshAt + 1_000;
      assert.ok(later < first.usableUntil);
      await redis.stop();
      await until('both stores to see the connection closed', () => replicas.every(({ store }) => !store.answers()));
      // Each replica serves the token it has and starts no refresh of its own.
      for (const { provider } of replicas) assert.equal(provider.peek(key, later)?.accessToken, first.accessToken);

      await redis.start();
      await until('both stores to answer again', () => replicas.every(({ store }) => store.answers()));
      for (const { provider } of replicas) provider.peek(key, later);
      await until('both replicas to have the refreshed token', () =>
        replicas.every(({ provider }) => provider.peek(key)?.accessToken !== first.accessToken),
      );
      // Without the deferral each replica would have refreshed alone during the outage (3 requests or more).
      assert.equal(requests, 2);
    } finally {
      for (const { store, provider } of replicas) {
        provider.close();
        await store.close();
      }
      await redis.stop();
    }
  });
});
