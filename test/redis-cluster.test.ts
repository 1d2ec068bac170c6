/**
 * Three gateway processes on a three-master Redis Cluster: a cold burst makes exactly one token
 * request for the fleet (the entry and its lease share a hash slot, so the lease scripts run), and
 * the slot holding a token is moved to another master while callers are served: reads during the
 * migration (ASK), after it (MOVED) and an invalidation in the moved slot all work, with no error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FLEET_SIZE, startHaFleet, steadyTraffic, storeUp, waitForEvent, type HaFleet } from './support/ha-fleet.js';
import { requireProgram } from './support/programs.js';
import { command, startRedisCluster, type RedisCluster } from './support/redis-ha.js';

const COLD = 'cold';
const MOVING = 'moving';
const BACKGROUND = ['orders', 'billing'] as const;

/** Every token entry key on the cluster's masters. */
async function entryKeys(cluster: RedisCluster): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const port of cluster.ports) for (const key of (await command(port, 'KEYS', '*token:*')) as string[]) keys.add(key);
  return keys;
}

describe(
  'a fleet on Redis Cluster',
  { skip: requireProgram('redis-server', 'redis-server').skip || requireProgram('redis-cli', 'redis-tools').skip },
  () => {
    let cluster: RedisCluster;
    let fleet: HaFleet;

    before(async () => {
      cluster = await startRedisCluster();
      const nodes = cluster.nodes.map((node) => `"${node}"`).join(', ');
      fleet = await startHaFleet(`cluster: { nodes: [ ${nodes} ] }`, [COLD, MOVING, ...BACKGROUND]);
      await Promise.all(fleet.replicas.map((replica) => waitForEvent(replica, 'cache_store_up')));
    });

    after(async () => {
      await fleet?.stop();
      await cluster?.stop();
    });

    it('makes exactly one token request for a cold burst of 300 callers on three replicas', async (t) => {
      const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => fleet.get(i % FLEET_SIZE, COLD)));
      assert.deepEqual(
        answers.filter((a) => a.status !== 200),
        [],
      );
      assert.equal(fleet.tokenRequests(COLD), 1);
      assert.deepEqual(new Set(answers.map((a) => a.token)), new Set([`tok-${COLD}-1`]));
      for (let i = 0; i < FLEET_SIZE; i++) assert.equal(storeUp(await fleet.metrics(i)), 1);
      t.diagnostic(`cluster cold burst: 300 callers served, 0 errors, ${fleet.tokenRequests(COLD)} token request`);
    });

    it('follows a slot moved to another master during traffic: no error, no extra token request', async (t) => {
      for (const connection of BACKGROUND) for (let i = 0; i < FLEET_SIZE; i++) assert.equal((await fleet.get(i, connection)).status, 200);
      const before = await entryKeys(cluster);
      assert.equal((await fleet.get(0, MOVING)).status, 200);
      const [entry] = [...(await entryKeys(cluster))].filter((key) => !before.has(key));
      assert.ok(entry !== undefined, 'the token entry is in the cluster');
      assert.match(entry, /token:\{[^}]+\}$/, 'the entry key carries a hash tag');
      const slot = Number(await command(cluster.ports[0]!, 'CLUSTER', 'KEYSLOT', entry));
      const owner = await cluster.ownerOf(slot);

      const traffic = steadyTraffic(fleet, [...BACKGROUND, MOVING]);
      const seen: Array<string | undefined> = [];
      const target = await cluster.migrateSlot(slot, {
        // The slot is MIGRATING and the entry still on its old master: read there.
        between: async () => void seen.push((await fleet.get(1, MOVING)).token),
        // The entry moved, the slot not yet: the old master answers ASK.
        moved: async () => void seen.push((await fleet.get(2, MOVING)).token),
      });
      assert.notEqual(target, owner);
      assert.equal(await cluster.ownerOf(slot), target);
      assert.deepEqual(seen, [`tok-${MOVING}-1`, `tok-${MOVING}-1`], 'both replicas read the shared token during the migration');
      assert.equal(fleet.tokenRequests(MOVING), 1);

      // The slot's new owner (MOVED for every replica's old map): an upstream refuses the token,
      // the invalidation and the new token go through the moved slot, and the others follow.
      fleet.revoke(`tok-${MOVING}-1`);
      assert.equal((await fleet.get(0, MOVING)).token, `tok-${MOVING}-2`);
      for (let i = 1; i < FLEET_SIZE; i++) {
        // The invalidation message may still be on its way: a caller in between is replayed (401 → new token).
        assert.equal((await fleet.get(i, MOVING)).token, `tok-${MOVING}-2`);
      }
      const stats = await traffic.stop();
      assert.deepEqual(stats.failures, [], 'no caller got an error');
      assert.equal(fleet.tokenRequests(MOVING), 2, 'one token request before the move, one after the revocation');
      for (const connection of BACKGROUND) assert.equal(fleet.tokenRequests(connection), 1);
      t.diagnostic(
        `cluster slot ${slot} moved from :${owner} to :${target} during traffic: ${stats.served} callers served, ${stats.errors} errors, ` +
          `token requests ${JSON.stringify(Object.fromEntries([MOVING, ...BACKGROUND].map((c) => [c, fleet.tokenRequests(c)])))}`,
      );
    });
  },
);
