/**
 * Every Redis gone: three gateway processes keep serving every caller from their own caches and
 * token requests, show the store down (tokengate_cache_store_up 0, one cache_store_down line each)
 * while /readyz stays ready, and share tokens again once Redis is back (cache_store_up, gauge 1).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FLEET_SIZE, startHaFleet, steadyTraffic, storeUp, type HaFleet } from './support/ha-fleet.js';
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
    await Promise.all(fleet.replicas.map((replica) => replica.waitForLog((line) => line.event === 'cache_store_up')));
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
    await Promise.all(fleet.replicas.map((replica, i) => replica.waitForLog((line) => line.event === 'cache_store_down', marks[i])));
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
    await Promise.all(fleet.replicas.map((replica, i) => replica.waitForLog((line) => line.event === 'cache_store_up', restarted[i])));
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
