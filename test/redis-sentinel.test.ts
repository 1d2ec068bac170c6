/**
 * Three gateway processes on a Sentinel-managed Redis (a master, a replica, three Sentinels) under
 * steady traffic while the master is SIGKILLed and Sentinel promotes the replica: no caller sees an
 * error, each connection's token is requested at most once more, and every replica follows the new
 * master and shares tokens through it again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FLEET_SIZE, startHaFleet, steadyTraffic, storeUp, waitForEvent, type HaFleet } from './support/ha-fleet.js';
import { requireProgram } from './support/programs.js';
import { SENTINEL_MASTER_NAME, startSentinelSet, until, type SentinelSet } from './support/redis-ha.js';

const WARM = ['orders', 'billing', 'stock'] as const;
/** First asked once the fleet follows the new master: shared through it or not. */
const AFTER = 'after-failover';

describe(
  'a fleet on Redis Sentinel through a failover',
  { skip: requireProgram('redis-server', 'redis-server').skip || requireProgram('redis-sentinel', 'redis-sentinel').skip },
  () => {
    let sentinel: SentinelSet;
    let fleet: HaFleet;

    before(async () => {
      sentinel = await startSentinelSet();
      const nodes = sentinel.sentinels.map((node) => `"${node}"`).join(', ');
      fleet = await startHaFleet(`sentinel: { name: ${SENTINEL_MASTER_NAME}, nodes: [ ${nodes} ] }`, [...WARM, AFTER]);
      await Promise.all(fleet.replicas.map((replica) => waitForEvent(replica, 'cache_store_up')));
    });

    after(async () => {
      await fleet?.stop();
      await sentinel?.stop();
    });

    it('serves every caller while the master is killed, asks for each token at most once more, and follows the new master', async (t) => {
      for (const connection of WARM) {
        const answers = await Promise.all(Array.from({ length: FLEET_SIZE }, (_, i) => fleet.get(i, connection)));
        assert.deepEqual(
          answers.map((a) => a.status),
          [200, 200, 200],
        );
        assert.equal(fleet.tokenRequests(connection), 1, `${connection}: one token request for the fleet`);
      }
      const traffic = steadyTraffic(fleet, WARM);
      await until('some traffic', () => fleet.upstream.received.length > 100);

      const marks = fleet.replicas.map((replica) => replica.logs.length);
      const killedAt = Date.now();
      const oldMaster = await sentinel.killMaster();
      await until('Sentinel to promote the replica', async () => (await sentinel.masterPort()) !== oldMaster);
      const promotedMs = Date.now() - killedAt;
      const followedMs: number[] = [];
      await Promise.all(
        fleet.replicas.map(async (replica, i) => {
          // Down at the kill (the closed connection), up once it follows the promoted replica.
          await waitForEvent(replica, 'cache_store_up', marks[i]);
          followedMs.push(Date.now() - killedAt);
        }),
      );
      for (let i = 0; i < FLEET_SIZE; i++) assert.equal(storeUp(await fleet.metrics(i)), 1);

      // Sharing works through the new master: a cold burst on all replicas makes one token request.
      const burst = await Promise.all(Array.from({ length: 60 }, (_, i) => fleet.get(i % FLEET_SIZE, AFTER)));
      const stats = await traffic.stop();
      assert.deepEqual(
        burst.filter((a) => a.status !== 200),
        [],
      );
      assert.equal(fleet.tokenRequests(AFTER), 1, 'one token request through the new master');
      assert.deepEqual(stats.failures, [], 'no caller got an error');
      const perConnection = Object.fromEntries(WARM.map((c) => [c, fleet.tokenRequests(c)]));
      for (const connection of WARM) assert.ok(fleet.tokenRequests(connection) <= 2, `${connection}: at most one more token request`);
      t.diagnostic(
        `sentinel failover: ${stats.served} callers served, ${stats.errors} errors, token requests per connection ${JSON.stringify(perConnection)} ` +
          `(1 before the kill), promoted after ${promotedMs} ms, replicas followed after ${followedMs.sort((a, b) => a - b).join(', ')} ms`,
      );
    });
  },
);
