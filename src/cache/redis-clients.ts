/**
 * The ioredis clients of the shared cache, for each topology of `cache.redis`: one server, a
 * master found through Sentinel (ioredis asks the Sentinels again whenever its connection drops,
 * so it follows a failover), or a Cluster (ioredis follows MOVED/ASK and refreshes its slot map).
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { clientTlsOptions } from '../config/tls.js';
import type { RedisAuth, RedisTopology } from '../config/types.js';

export type RedisClient = Redis | Cluster;

/** Reconnect back-off grows by this per attempt, up to RECONNECT_MAX_MS. */
export const REDIS_RECONNECT_STEP_MS = 100;
export const REDIS_RECONNECT_MAX_MS = 1_000;
export const REDIS_CONNECT_TIMEOUT_MS = 1_000;

const reconnect = (attempt: number) => Math.min(attempt * REDIS_RECONNECT_STEP_MS, REDIS_RECONNECT_MAX_MS);

/**
 * A client for requests: it never queues behind a dead connection (while Redis is away, calls fail
 * at once and the replica fetches on its own), and one for pub/sub, which is on no request's path:
 * it may queue, and ioredis renews its subscriptions after a reconnect or a failover.
 */
export function redisClients(topology: RedisTopology, commandTimeoutMs: number): { client: RedisClient; subscriber: RedisClient } {
  return {
    client: redisClient(topology, { commandTimeout: commandTimeoutMs, enableOfflineQueue: false, maxRetriesPerRequest: 0 }),
    subscriber: redisClient(topology, { enableOfflineQueue: true, maxRetriesPerRequest: null }),
  };
}

/** One client of the topology with the request options given (the admin session store uses its own). */
export function redisClient(topology: RedisTopology, request: RedisOptions): RedisClient {
  const common: RedisOptions = { ...request, connectTimeout: REDIS_CONNECT_TIMEOUT_MS, retryStrategy: reconnect };
  switch (topology.kind) {
    case 'server':
      return new Redis(topology.url, common);
    case 'sentinel': {
      const tls = tlsOf(topology);
      return new Redis({
        ...common,
        ...auth(topology),
        name: topology.name,
        sentinels: topology.nodes.map(({ host, port }) => ({ host, port })),
        sentinelUsername: topology.sentinelUsername,
        sentinelPassword: topology.sentinelPassword?.reveal(),
        // Sentinels that cannot be reached are asked again at the same pace as a lost master.
        sentinelRetryStrategy: reconnect,
        // No failoverDetector: its disconnect on +switch-master, arriving while the client was
        // reconnecting, left it closed for good in our failover test. A killed master closes the
        // connection anyway, and every reconnect asks the Sentinels for the master again.
        ...(tls === undefined ? {} : { tls, sentinelTLS: tls, enableTLSForSentinelMode: true }),
      });
    }
    case 'cluster': {
      const tls = tlsOf(topology);
      const options: ClusterOptions = {
        enableOfflineQueue: request.enableOfflineQueue ?? false,
        clusterRetryStrategy: reconnect,
        redisOptions: { ...common, ...auth(topology), ...(tls === undefined ? {} : { tls }) },
      };
      return new Cluster(
        topology.nodes.map(({ host, port }) => ({ host, port })),
        options,
      );
    }
  }
}

function auth({ username, password }: RedisAuth): Pick<RedisOptions, 'username' | 'password'> {
  return { username, password: password?.reveal() };
}

function tlsOf({ tls }: RedisAuth): ConnectionOptions | undefined {
  return tls === undefined ? undefined : clientTlsOptions(tls, undefined);
}
