/**
 * Highly available Redis for the tests, from Debian's programs: a master, a replica and three
 * Sentinels (redis-sentinel), or a three-master Cluster (`redis-cli --cluster create`). Every
 * process is a child of the test on free loopback ports, in a temporary folder removed at stop().
 * Nothing waits a fixed time: each step polls the condition it needs.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { launchRedis, redisArgs } from './redis.js';
import { freePort } from './servers.js';

const run = promisify(execFile);

export const SENTINEL_MASTER_NAME = 'mymaster';
/** Sentinel calls a master down after this long without an answer (production: 30 s and more). */
export const SENTINEL_DOWN_AFTER_MS = 1_000;
/** How long one failover attempt may take before Sentinel tries another. */
export const SENTINEL_FAILOVER_TIMEOUT_MS = 1_500;

/** Polls `condition` every 50 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await condition()) return;
    } catch {
      // not yet (a server still starting refuses connections)
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One command on a short-lived connection (the test's own view of a node, never the gateway's). */
export async function command(port: number, name: string, ...args: Array<string | number>): Promise<unknown> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(name, ...args);
  } finally {
    client.disconnect();
  }
}

interface Node {
  readonly port: number;
  readonly child: ChildProcess;
}

async function kill(node: Node): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  const exited = once(node.child, 'exit');
  node.child.kill('SIGKILL');
  await exited;
}

async function server(...extra: string[]): Promise<Node> {
  const port = await freePort();
  return { port, child: await launchRedis('redis-server', [...redisArgs(port), ...extra]) };
}

export interface SentinelSet {
  /** `host:port` of each Sentinel, as `cache.redis.sentinel.nodes` takes them. */
  readonly sentinels: readonly string[];
  /** The port Sentinel names as the master now. */
  masterPort(): Promise<number>;
  /** SIGKILLs the current master (a crash: no shutdown, no last replication) and resolves once it exited. */
  killMaster(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A master, one replica in sync with it, and three Sentinels (quorum 2) that know each other and
 * the replica, so that killing the master leads to a failover. Guard the suite with
 * `requireProgram('redis-sentinel', 'redis-sentinel')` and `requireProgram('redis-server', 'redis-server')`.
 */
export async function startSentinelSet(): Promise<SentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-sentinel-'));
  const master = await server();
  const replica = await server('--replicaof', '127.0.0.1', String(master.port));
  const nodes = new Map([master, replica].map((node) => [node.port, node]));
  const sentinels: Node[] = [];
  try {
    await until('the replica to be in sync', async () =>
      /master_link_status:up/.test(String(await command(replica.port, 'INFO', 'replication'))),
    );
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // Sentinel rewrites its config file: each gets its own, in the temporary folder.
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${SENTINEL_DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} ${SENTINEL_FAILOVER_TIMEOUT_MS}`,
          `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push({ port, child: await launchRedis('redis-sentinel', [file], '+monitor master') });
    }
    // Sentinels find the replica through the master's INFO and each other through hello messages.
    for (const sentinel of sentinels) {
      await until('each Sentinel to know the replica and the two other Sentinels', async () => {
        const replicas = (await command(sentinel.port, 'SENTINEL', 'REPLICAS', SENTINEL_MASTER_NAME)) as unknown[];
        const others = (await command(sentinel.port, 'SENTINEL', 'SENTINELS', SENTINEL_MASTER_NAME)) as unknown[];
        return replicas.length === 1 && others.length === 2;
      });
    }
  } catch (error) {
    await Promise.all([...nodes.values(), ...sentinels].map(kill));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const masterPort = async () => {
    const [, port] = (await command(sentinels[0]!.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME)) as [string, string];
    return Number(port);
  };
  return {
    sentinels: sentinels.map(({ port }) => `127.0.0.1:${port}`),
    masterPort,
    async killMaster() {
      const port = await masterPort();
      await kill(nodes.get(port)!);
      return port;
    },
    async stop() {
      await Promise.all([...nodes.values(), ...sentinels].map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisCluster {
  /** `host:port` of each master, as `cache.redis.cluster.nodes` takes them. */
  readonly nodes: readonly string[];
  readonly ports: readonly number[];
  /** The port of the master that serves `slot`. */
  ownerOf(slot: number): Promise<number>;
  /**
   * Moves `slot` and its keys to another master the way `redis-cli --cluster reshard` does:
   * IMPORTING on the target, MIGRATING on the source, MIGRATE the keys, then SETSLOT NODE on
   * every master. `between` runs after the slot is marked migrating and before the keys move, and
   * `moved` after the keys moved and before the owner changes (the windows where ASK is answered).
   */
  migrateSlot(slot: number, steps?: { between?: () => Promise<void>; moved?: () => Promise<void> }): Promise<number>;
  /** SIGKILLs every node. */
  stop(): Promise<void>;
}

/** Three masters, no replicas, every slot assigned. Also guard with `requireProgram('redis-cli', 'redis-tools')`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-cluster-'));
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // The bus port would be port + 10000 by default, which may be past 65535 or taken.
      const busPort = await freePort();
      const args = [
        ...redisArgs(port),
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(busPort),
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
        '--dir',
        dir,
      ];
      nodes.push({ port, child: await launchRedis('redis-server', args) });
    }
    const addresses = nodes.map(({ port }) => `127.0.0.1:${port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    for (const node of nodes) {
      await until('every node to see the cluster ok', async () => {
        const info = String(await command(node.port, 'CLUSTER', 'INFO'));
        return /cluster_state:ok/.test(info) && /cluster_known_nodes:3/.test(info);
      });
    }
  } catch (error) {
    await Promise.all(nodes.map(kill));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const ports = nodes.map(({ port }) => port);
  const nodeId = async (port: number) => String(await command(port, 'CLUSTER', 'MYID'));
  const ownerOf = async (slot: number) => {
    const ranges = (await command(ports[0]!, 'CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, string]]>;
    const range = ranges.find(([from, to]) => from <= slot && slot <= to);
    if (range === undefined) throw new Error(`slot ${slot} has no owner`);
    return Number(range[2][1]);
  };
  return {
    nodes: ports.map((port) => `127.0.0.1:${port}`),
    ports,
    ownerOf,
    async migrateSlot(slot, steps = {}) {
      const source = await ownerOf(slot);
      const target = ports.find((port) => port !== source)!;
      const [sourceId, targetId] = [await nodeId(source), await nodeId(target)];
      await command(target, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId);
      await command(source, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
      await steps.between?.();
      for (;;) {
        const keys = (await command(source, 'CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
        if (keys.length === 0) break;
        await command(source, 'MIGRATE', '127.0.0.1', target, '', 0, 5_000, 'KEYS', ...keys);
      }
      await steps.moved?.();
      for (const port of [target, source, ...ports.filter((p) => p !== source && p !== target)]) {
        await command(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
      }
      return target;
    },
    async stop() {
      await Promise.all(nodes.map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
