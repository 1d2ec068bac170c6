/**
 * Three gateway processes on one shared cache, a token endpoint that counts requests per
 * connection, an upstream that can refuse a token (401), and steady traffic that counts callers
 * served and errors: what the highly available cache tests (Sentinel, Cluster, all Redis gone)
 * measure.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { spawnReplica, type Replica } from './fleet.js';
import { writeConfig } from './gateway.js';
import { json, startServer, type TestServer } from './servers.js';

export const FLEET_SIZE = 3;
const TOKEN_DELAY_MS = 100;
const BUDGET_MS = 2_000;
/** A traffic loop stops by itself after this, whatever the test does. */
const TRAFFIC_CAP_MS = 90_000;

export interface HaFleet {
  readonly replicas: readonly Replica[];
  readonly upstream: TestServer;
  /** Token requests each connection caused so far. */
  tokenRequests(connection: string): number;
  /** The upstream answers 401 to this token from now on (a revocation). */
  revoke(token: string): void;
  /** One request for `connection` through replica `index`: its status and the token the upstream saw. */
  get(index: number, connection: string): Promise<{ status: number; token: string | undefined }>;
  /** Prometheus text of a replica's admin listener. */
  metrics(index: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * `redisYaml` is the `cache.redis` block's body (`url: ...`, `sentinel: {...}` or `cluster: {...}`);
 * every name of `connections` is a connection with its own client id and a route `/<name>`.
 */
export async function startHaFleet(redisYaml: string, connections: readonly string[]): Promise<HaFleet> {
  const counts = new Map<string, number>();
  const revoked = new Set<string>();
  const tokenEndpoint = await startServer((req, res) => {
    const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
    const connection = decodeURIComponent(basic.slice(0, basic.indexOf(':')));
    const n = (counts.get(connection) ?? 0) + 1;
    counts.set(connection, n);
    setTimeout(() => json(res, 200, { access_token: `tok-${connection}-${n}`, token_type: 'Bearer', expires_in: 300 }), TOKEN_DELAY_MS);
  });
  const upstream = await startServer((req, res) => {
    const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
    if (revoked.has(token)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
      return void res.end();
    }
    json(res, 200, { token });
  });
  const yaml = `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
logging: { accessLog: off }
secrets:
  client-secret: { value: fleet-secret }
  cache-key: { value: ${randomBytes(32).toString('base64')} }
cache:
  store: redis
  redis:
    ${redisYaml}
    keyPrefix: "ha-${randomBytes(4).toString('hex')}:"
  encryptionKey: { secret: cache-key }
connections:${connections
    .map(
      (name) => `
  ${name}:
    clientId: ${name}
    tokenUrl: ${tokenEndpoint.url}/token
    clientSecret: { secret: client-secret }
    timeouts: { totalMs: 1500 }
    retry: { budgetMs: ${BUDGET_MS} }`,
    )
    .join('')}
routes:${connections
    .map(
      (name) => `
  - name: ${name}
    match: { pathPrefix: /${name} }
    upstream: ${upstream.url}
    stripPrefix: true
    auth: { connection: ${name} }`,
    )
    .join('')}
`;
  const { configFile } = writeConfig(yaml);
  const replicas: Replica[] = [];
  try {
    for (let i = 0; i < FLEET_SIZE; i++) replicas.push(await spawnReplica(configFile));
  } catch (error) {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await tokenEndpoint.close();
    await upstream.close();
    throw error;
  }
  return {
    replicas,
    upstream,
    tokenRequests: (connection) => counts.get(connection) ?? 0,
    revoke: (token) => void revoked.add(token),
    async get(index, connection) {
      const response = await fetch(`${replicas[index]!.url}/${connection}/item`);
      const body = (await response.json().catch(() => ({}))) as { token?: string };
      return { status: response.status, token: body.token };
    },
    metrics: async (index) => (await fetch(`${replicas[index]!.admin}/metrics`)).text(),
    async stop() {
      await Promise.all(replicas.map((replica) => replica.stop()));
      await tokenEndpoint.close();
      await upstream.close();
    },
  };
}

/** A replica's first `event` log line from index `from` on; fails (never hangs) after `timeoutMs`. */
export async function waitForEvent(replica: Replica, event: string, from = 0, timeoutMs = 60_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const seen = replica.logs.slice(from).filter((line) => typeof line.event === 'string' && line.event.startsWith('cache'));
      reject(new Error(`no ${event} log line within ${timeoutMs} ms; cache lines since: ${JSON.stringify(seen).slice(-3000)}`));
    }, timeoutMs);
  });
  try {
    await Promise.race([replica.waitForLog((line) => line.event === event, from), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** `tokengate_cache_store_up` as a replica's /metrics shows it, or undefined when absent. */
export function storeUp(metricsText: string): number | undefined {
  const line = /^tokengate_cache_store_up (\S+)$/m.exec(metricsText);
  return line === null ? undefined : Number(line[1]);
}

export interface TrafficStats {
  served: number;
  errors: number;
  /** Status codes (or `network`) of the failed callers, for the assertion message. */
  failures: string[];
}

/**
 * `workers` callers in a loop, each sending one request after another to the replicas and
 * connections in turn, until stop() (or TRAFFIC_CAP_MS). A caller counts as served on a 200.
 */
export function steadyTraffic(fleet: HaFleet, connections: readonly string[], workers = 6): { stop(): Promise<TrafficStats> } {
  const stats: TrafficStats = { served: 0, errors: 0, failures: [] };
  const endAt = Date.now() + TRAFFIC_CAP_MS;
  let stopped = false;
  const loops = Array.from({ length: workers }, async (_, worker) => {
    for (let i = worker; !stopped && Date.now() < endAt; i++) {
      try {
        const { status } = await fleet.get(i % FLEET_SIZE, connections[i % connections.length]!);
        if (status === 200) stats.served++;
        else {
          stats.errors++;
          stats.failures.push(String(status));
        }
      } catch {
        stats.errors++;
        stats.failures.push('network');
      }
      // Steady, not flat out: the machine is shared, and Redis needs a moment too.
      await delay(5);
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return stats;
    },
  };
}
