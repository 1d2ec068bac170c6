/**
 * Three gateway processes sharing one real Redis behave, towards the authorization server, like
 * one gateway: one token request per key for the fleet, revocations seen fleet-wide, nothing lost
 * when Redis goes away, and a dead lease holder replaced within the lease time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { LEASE_MARGIN_MS, LEASE_POLL_MS } from '../src/cache/redis-store.js';
import { spawnReplica, type Replica } from './support/fleet.js';
import { writeConfig } from './support/gateway.js';
import { requireProgram } from './support/programs.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { json, startServer, type TestServer } from './support/servers.js';

const TOKEN_DELAY_MS = 200;
const BUDGET_MS = 2_000;
const LEASE_MS = BUDGET_MS + LEASE_MARGIN_MS;
/** Timers and process scheduling on a busy CI machine. */
const SLACK_MS = 500;
const SCOPES = ['cold', 'revoke', 'outage-a', 'outage-b', 'outage-c', 'hang'] as const;

interface TokenCall {
  scope: string;
  at: number;
}

function fleetConfig(redis: RedisServer, tokenUrl: string, upstream: string, prefix: string): string {
  const routes = SCOPES.map(
    (scope) => `
  - name: ${scope}
    match: { pathPrefix: /${scope} }
    upstream: ${upstream}
    stripPrefix: true
    auth: { connection: fake, params: { scope: ${scope} } }`,
  ).join('');
  return `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
logging: { accessLog: off }
secrets:
  client-secret: { value: fleet-secret }
  cache-key: { value: ${randomBytes(32).toString('base64')} }
cache:
  store: redis
  redis: { url: "${redis.url}", keyPrefix: "${prefix}" }
  encryptionKey: { secret: cache-key }
connections:
  fake:
    clientId: fleet-client
    tokenUrl: ${tokenUrl}
    clientSecret: { secret: client-secret }
    timeouts: { totalMs: 1500 }
    retry: { budgetMs: ${BUDGET_MS} }
routes:${routes}
`;
}

describe('a fleet of three replicas sharing Redis', requireProgram('redis-server', 'redis-server'), () => {
  let redis: RedisServer;
  let tokenEndpoint: TestServer;
  let upstream: TestServer;
  let replicas: Replica[];
  const calls: TokenCall[] = [];
  const revoked = new Set<string>();
  const hanging: ServerResponse[] = [];
  let onTokenCall: (() => void) | undefined;

  const callsFor = (scope: string) => calls.filter((c) => c.scope === scope);
  const nextTokenCall = () => new Promise<void>((resolve) => (onTokenCall = resolve));
  const get = async (replica: Replica, path: string) => {
    const response = await fetch(`${replica.url}${path}`);
    const body = (await response.json()) as { authorization?: string | null };
    return { status: response.status, authorization: body.authorization };
  };

  before(async () => {
    redis = await startRedis();
    tokenEndpoint = await startServer((_req, res, body) => {
      const scope = new URLSearchParams(body.toString()).get('scope') ?? '';
      calls.push({ scope, at: Date.now() });
      const n = callsFor(scope).length;
      onTokenCall?.();
      // The first token request of "hang" never gets an answer: its replica is killed holding the lease.
      if (scope === 'hang' && n === 1) return void hanging.push(res);
      setTimeout(() => json(res, 200, { access_token: `tok-${scope}-${n}`, token_type: 'Bearer', expires_in: 300 }), TOKEN_DELAY_MS);
    });
    upstream = await startServer((req, res) => {
      const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
      if (revoked.has(token)) {
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
        return void res.end();
      }
      json(res, 200, { authorization: req.headers.authorization ?? null });
    });
    const { configFile } = writeConfig(
      fleetConfig(redis, `${tokenEndpoint.url}/token`, upstream.url, `fleet-${randomBytes(4).toString('hex')}:`),
    );
    replicas = await Promise.all([0, 1, 2].map(() => spawnReplica(configFile)));
  });

  after(async () => {
    for (const res of hanging) res.destroy();
    await Promise.all((replicas ?? []).map((replica) => replica.stop()));
    await tokenEndpoint?.close();
    await upstream?.close();
    await redis?.stop();
  });

  it('makes exactly one token request for 300 concurrent requests on a cold cache', async () => {
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => get(replicas[i % 3]!, `/cold/item/${i}`)));
    assert.deepEqual(
      results.filter((r) => r.status !== 200),
      [],
    );
    assert.equal(callsFor('cold').length, 1);
    assert.deepEqual(new Set(results.map((r) => r.authorization)), new Set(['Bearer tok-cold-1']));
  });

  it("drops other replicas' copies of a token an upstream refused (401 replay)", async () => {
    for (const replica of replicas) assert.equal((await get(replica, '/revoke')).authorization, 'Bearer tok-revoke-1');
    assert.equal(callsFor('revoke').length, 1);
    revoked.add('tok-revoke-1');
    const replayed = await get(replicas[0]!, '/revoke');
    assert.equal(replayed.authorization, 'Bearer tok-revoke-2');
    const sentBefore = upstream.received.length;
    for (const replica of replicas.slice(1)) assert.equal((await get(replica, '/revoke')).authorization, 'Bearer tok-revoke-2');
    // The other replicas went straight to the new token: no request with the revoked one, no fetch of their own.
    assert.deepEqual(
      upstream.received.slice(sentBefore).map((r) => r.headers.authorization),
      ['Bearer tok-revoke-2', 'Bearer tok-revoke-2'],
    );
    assert.equal(callsFor('revoke').length, 2);
  });

  it('answers every request while Redis is stopped mid-run, and shares again once it is back', async () => {
    for (const replica of replicas) assert.equal((await get(replica, '/outage-a')).status, 200);
    assert.equal(callsFor('outage-a').length, 1);

    // Stop Redis while one replica holds the lease for outage-b and the others wait on it.
    const leaseTaken = nextTokenCall();
    const during = Promise.all(Array.from({ length: 60 }, (_, i) => get(replicas[i % 3]!, i % 2 === 0 ? '/outage-a' : '/outage-b')));
    await leaseTaken;
    await redis.stop();
    const results = await during;
    assert.deepEqual(
      results.filter((r) => r.status !== 200),
      [],
    );
    const later = await Promise.all(replicas.map((replica) => get(replica, '/outage-b')));
    assert.deepEqual(
      later.map((r) => r.status),
      [200, 200, 200],
    );

    const marks = replicas.map((replica) => replica.logs.length);
    await redis.start();
    await Promise.all(replicas.map((replica, i) => replica.waitForLog((line) => line.event === 'cache_connected', marks[i])));
    assert.equal((await get(replicas[0]!, '/outage-c')).authorization, 'Bearer tok-outage-c-1');
    assert.equal((await get(replicas[1]!, '/outage-c')).authorization, 'Bearer tok-outage-c-1');
    assert.equal((await get(replicas[2]!, '/outage-c')).authorization, 'Bearer tok-outage-c-1');
    assert.equal(callsFor('outage-c').length, 1);
  });

  it('lets another replica fetch within the lease time when the lease holder is killed', async () => {
    const [holder, ...others] = replicas as [Replica, Replica, Replica];
    const held = nextTokenCall();
    void get(holder, '/hang').catch(() => undefined);
    await held;
    const waiting = others.map((replica) => get(replica, '/hang'));
    holder.child.kill('SIGKILL');
    const results = await Promise.all(waiting);
    assert.deepEqual(
      results.map((r) => r.authorization),
      ['Bearer tok-hang-2', 'Bearer tok-hang-2'],
    );
    const [first, second, extra] = callsFor('hang');
    assert.equal(extra, undefined, 'one replica takes over; the other waits for its token');
    assert.ok(
      second!.at - first!.at <= LEASE_MS + LEASE_POLL_MS + SLACK_MS,
      `took over after ${second!.at - first!.at} ms (lease ${LEASE_MS} ms)`,
    );
  });
});
