/**
 * Two gateway processes sharing managed signing keys through a real Redis: whichever starts first
 * makes the key set, the other adopts it, every rotation reaches both, and each replica signs
 * assertions that oidc-provider verifies against the JWKS of the other one. In Redis the key set
 * is encrypted with cache.encryptionKey.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { JWK } from 'jose';
import { spawnReplica, type Replica } from './support/fleet.js';
import { writeConfig } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { requireProgram } from './support/programs.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { honourJwksMaxAge, recordGrants, type Grants } from './support/secretless.js';
import { freePort, startEchoUpstream, type TestServer } from './support/servers.js';
import { waitFor } from './support/wait.js';

const ROTATE_EVERY_S = 10;
const OVERLAP_S = 4;
const PREFIX = 'managed-fleet:';

function replicaConfig(redis: RedisServer, tokenUrl: string, upstream: string, adminPort: number, cacheKey: string): string {
  return `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: ${adminPort} }
logging: { accessLog: off }
secrets:
  cache-key: { value: ${cacheKey} }
cache:
  store: redis
  redis: { url: "${redis.url}", keyPrefix: "${PREFIX}" }
  encryptionKey: { secret: cache-key }
connections:
  managed:
    clientId: fleet-managed
    tokenUrl: ${tokenUrl}
    privateKeyJwt:
      managed: { algorithm: EdDSA, rotateEvery: ${ROTATE_EVERY_S}s, overlap: ${OVERLAP_S}s }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: ${upstream}
    auth: { connection: managed }
`;
}

const signingKids = (replica: Replica) =>
  replica.logs.filter((line) => line.event === 'managed_key_signing').map((line) => String(line.kid));

async function jwks(replica: Replica): Promise<string[]> {
  const { keys } = (await (await fetch(`${replica.admin}/jwks/managed.json`)).json()) as { keys: JWK[] };
  return keys.map((key) => key.kid!).sort();
}

describe('two replicas sharing managed keys through Redis', requireProgram('redis-server', 'redis-server'), () => {
  let redis: RedisServer;
  let oidc: OidcServer;
  let upstream: TestServer;
  let grants: Grants;
  let a: Replica;
  let b: Replica;

  before(async () => {
    redis = await startRedis();
    const adminA = await freePort();
    oidc = await startOidcProvider(
      [
        {
          client_id: 'fleet-managed',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks_uri: `http://127.0.0.1:${adminA}/jwks/managed.json`,
        },
      ],
      { ttlSeconds: 3, loopbackJwksUri: true },
    );
    grants = recordGrants(oidc);
    await honourJwksMaxAge(oidc, 'fleet-managed', Math.floor(OVERLAP_S / 2));
    upstream = await startEchoUpstream();
    const cacheKey = randomBytes(32).toString('base64');
    const configA = writeConfig(replicaConfig(redis, oidc.tokenUrl, upstream.url, adminA, cacheKey)).configFile;
    const configB = writeConfig(replicaConfig(redis, oidc.tokenUrl, upstream.url, 0, cacheKey)).configFile;
    // Started together: both find no key set, one SET wins, the other adopts it.
    [a, b] = await Promise.all([spawnReplica(configA), spawnReplica(configB)]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await upstream?.close();
    await oidc?.close();
    await redis?.stop();
  });

  it('signs with the same key on both replicas and publishes the same JWKS', async () => {
    await Promise.all([a, b].map((replica) => replica.waitForLog((line) => line.event === 'managed_key_signing')));
    assert.equal(signingKids(a)[0], signingKids(b)[0]);
    assert.deepEqual(await jwks(a), await jwks(b));
  });

  it('keeps both replicas on published keys across a rotation: no caller error, each replica signs what A publishes', async () => {
    const failures: number[] = [];
    let calls = 0;
    let stop = false;
    const caller = async (replica: Replica) => {
      while (!stop) {
        const response = await fetch(`${replica.url}/api/orders`);
        await response.arrayBuffer();
        calls++;
        if (response.status !== 200) failures.push(response.status);
      }
    };
    const callers = [caller(a), caller(b), caller(b)];
    const before = oidc.tokenRequests;
    let tested: Array<{ ok: boolean }>;
    try {
      await waitFor(() => signingKids(a).length >= 2 && signingKids(b).length >= 2, 'the rotation on both replicas');
      assert.equal(signingKids(a)[1], signingKids(b)[1], 'both replicas sign with the same rotated key');
      assert.deepEqual(await jwks(a), await jwks(b));
      // A token request straight from each replica (the admin test button): signed with its key of the moment.
      tested = await Promise.all(
        [a, b].map(
          async (replica) =>
            (await fetch(`${replica.admin}/connections/managed/test`, { method: 'POST' })).json() as Promise<{ ok: boolean }>,
        ),
      );
    } finally {
      stop = true;
      await Promise.all(callers);
    }
    process.stdout.write(
      `# managed fleet: ${calls} caller requests, ${failures.length} failed; ${oidc.tokenRequests - before} token requests, ` +
        `${grants.errors.length} refused\n`,
    );
    assert.deepEqual(
      tested.map((summary) => summary.ok),
      [true, true],
    );
    assert.ok(grants.kids.includes(signingKids(b)[1]!), 'the server accepted an assertion signed with the rotated key');
    assert.deepEqual(failures, []);
    assert.deepEqual(grants.errors, []);
    // One replica made each key, the other adopted it.
    const published = (replica: Replica) => replica.logs.filter((line) => line.event === 'managed_key_published').length;
    assert.ok(published(a) >= 2 && published(b) >= 2);
  });

  it('converges again after Redis was away across a key step: one key set, both replicas sign what A publishes', async () => {
    const marks = [a.logs.length, b.logs.length];
    await redis.stop();
    await Promise.all([a, b].map((replica, i) => replica.waitForLog((line) => line.event === 'managed_keys_unshared', marks[i])));
    // Each replica makes the next key alone meanwhile.
    const stepped = [signingKids(a).length, signingKids(b).length];
    await waitFor(() => signingKids(a).length > stepped[0]! && signingKids(b).length > stepped[1]!, 'a key step during the outage');
    await redis.start();
    await Promise.all([a, b].map((replica, i) => replica.waitForLog((line) => line.event === 'managed_keys_shared', marks[i])));
    const converged = async () => JSON.stringify(await jwks(a)) === JSON.stringify(await jwks(b));
    await waitFor(converged, 'the replicas converging on one key set', 10_000);
    const tested = await Promise.all(
      [b, a].map(
        async (replica) =>
          (await fetch(`${replica.admin}/connections/managed/test`, { method: 'POST' })).json() as Promise<{ ok: boolean }>,
      ),
    );
    assert.deepEqual(
      tested.map((summary) => summary.ok),
      [true, true],
    );
  });

  it('keeps the key set in Redis encrypted, with a version for compare-and-set', async () => {
    const client = new Redis(redis.url);
    try {
      const names = await client.keys(`${PREFIX}keys:*`);
      assert.equal(names.length, 1);
      const value = (await client.get(names[0]!))!;
      assert.match(value, /^\d+:v1\.[0-9a-f]{8}\./);
      assert.ok(!value.includes('"d"') && !value.includes('OKP'), 'no key material in clear');
    } finally {
      client.disconnect();
    }
  });
});
