/**
 * The fleet row of `npm run bench`: three gateway replicas sharing their tokens through one Redis,
 * then through a three-master Redis Cluster. Each topology: a cold burst on all three replicas at
 * once (where the shared cache does its work: one token request for the fleet), then load on the
 * three together (where it should cost nothing: a hit never leaves the process).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { findProgram } from '../test/support/programs.js';
import { startRedisCluster } from '../test/support/redis-ha.js';
import { startRedis } from '../test/support/redis.js';
import { burst, load, spawnGateway, type Peer } from './support.js';

const REPLICAS = 3;
const COLD_BURST = 300;

export interface FleetRow {
  readonly topology: string;
  readonly coldBurstMs: number;
  readonly coldBurstErrors: number;
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly tokenRequests: number;
}

/** What a replica's config adds for the shared cache: a line under `secrets`, and the `cache` block. */
export interface SharedCache {
  readonly secret: string;
  readonly cache: string;
}

export interface FleetSetup {
  readonly work: string;
  readonly gatewayYaml: (port: number, adminPort: number, shared: SharedCache) => string;
  readonly tokenRequests: () => Promise<number>;
  readonly path: string;
  readonly seconds: number;
}

/** undefined when redis-server or redis-cli is not installed. */
export async function runFleet(setup: FleetSetup): Promise<FleetRow[] | undefined> {
  if (findProgram('redis-server') === undefined || findProgram('redis-cli') === undefined) return undefined;
  const rows: FleetRow[] = [];
  const redis = await startRedis();
  try {
    rows.push(await measure(setup, 'one Redis', `url: "${redis.url}"`));
  } finally {
    await redis.stop();
  }
  const cluster = await startRedisCluster();
  try {
    rows.push(await measure(setup, '3-master Cluster', `cluster: { nodes: [ ${cluster.nodes.map((n) => `"${n}"`).join(', ')} ] }`));
  } finally {
    await cluster.stop();
  }
  return rows;
}

async function measure(setup: FleetSetup, topology: string, redisYaml: string): Promise<FleetRow> {
  const shared: SharedCache = {
    secret: `cache-key: { value: ${randomBytes(32).toString('base64')} }`,
    cache: `
cache:
  store: redis
  redis:
    ${redisYaml}
    keyPrefix: "bench-${randomBytes(4).toString('hex')}:"
  encryptionKey: { secret: cache-key }
`,
  };
  const replicas: Peer[] = [];
  try {
    for (let i = 0; i < REPLICAS; i++) {
      replicas.push(
        await spawnGateway(`fleet-${i}`, join(setup.work, `fleet-${i}.yaml`), (port, adminPort) =>
          setup.gatewayYaml(port, adminPort, shared),
        ),
      );
    }
    const before = await setup.tokenRequests();
    const started = performance.now();
    const statuses = (
      await Promise.all(replicas.map((replica) => burst(`${replica.url}${setup.path}`, Math.ceil(COLD_BURST / REPLICAS))))
    ).flat();
    const coldBurstMs = performance.now() - started;
    const results = await Promise.all(replicas.map((replica) => load({ url: `${replica.url}${setup.path}`, duration: setup.seconds })));
    return {
      topology,
      coldBurstMs,
      coldBurstErrors: statuses.filter((status) => status !== 200).length,
      requestsPerSecond: results.reduce((sum, r) => sum + r.requestsPerSecond, 0),
      p99Ms: Math.max(...results.map((r) => r.p99Ms)),
      errors: results.reduce((sum, r) => sum + r.errors, 0),
      tokenRequests: (await setup.tokenRequests()) - before,
    };
  } finally {
    for (const replica of replicas) await replica.stop();
  }
}
