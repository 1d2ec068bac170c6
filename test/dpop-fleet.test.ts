/**
 * Two gateway processes on one Redis with the same configured DPoP key: they share one bound token
 * (one token request), and the resource server accepts both replicas' proofs for it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startDpopResourceServer, type DpopResourceServer } from './support/dpop-resource-server.js';
import { spawnReplica, type Replica } from './support/fleet.js';
import { writeConfig } from './support/gateway.js';
import { encodeKey, generateKey } from './support/keys.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { requireProgram } from './support/programs.js';
import { startRedis, type RedisServer } from './support/redis.js';

const SECRET = 'dpop-fleet-secret-0123456789abcdef';

describe('two replicas on Redis sharing a configured DPoP key', requireProgram('redis-server', 'redis-server'), () => {
  let redis: RedisServer;
  let oidc: OidcServer;
  let rs: DpopResourceServer;
  let replicas: Replica[];
  let config: (pem: string) => string;

  before(async () => {
    redis = await startRedis();
    oidc = await startOidcProvider(
      [{ client_id: 'fleet', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post', dpop_bound_access_tokens: true }],
      { features: { dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true } } },
    );
    rs = await startDpopResourceServer({ introspect: (token) => oidc.introspect(token), requireNonce: true });
    const prefix = `dpop-${randomBytes(4).toString('hex')}:`;
    const cacheKey = randomBytes(32).toString('base64');
    config = (pem) =>
      writeConfig(
        `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
logging: { accessLog: off }
secrets:
  client: { value: ${SECRET} }
  cache-key: { value: ${cacheKey} }
  dpop-key: { file: dpop.pem }
cache:
  store: redis
  redis: { url: "${redis.url}", keyPrefix: "${prefix}" }
  encryptionKey: { secret: cache-key }
connections:
  bound:
    clientId: fleet
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: client, method: client_secret_post }
    dpop: { key: dpop-key, algorithm: ES256 }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: ${rs.url}
    auth: { connection: bound }
`,
        { 'dpop.pem': pem },
      ).configFile;
    const shared = config(encodeKey(generateKey({ type: 'ec', curve: 'P-256' }).privateKey, 'pkcs8'));
    replicas = await Promise.all([0, 1].map(() => spawnReplica(shared)));
  });

  after(async () => {
    await Promise.all((replicas ?? []).map((replica) => replica.stop()));
    await rs?.close();
    await oidc?.close();
    await redis?.stop();
  });

  it('share one token, and both pass the resource server with their own proofs', async () => {
    const first = await fetch(`${replicas[0]!.url}/api/orders`);
    assert.equal(first.status, 200, JSON.stringify(rs.checks));
    const requestsAfterFirst = oidc.tokenRequests;
    const second = await fetch(`${replicas[1]!.url}/api/orders`);
    assert.equal(second.status, 200, JSON.stringify(rs.checks));
    assert.equal(oidc.tokenRequests, requestsAfterFirst, 'the second replica took the token from Redis');
    const accepted = rs.checks.filter((c) => c.ok);
    assert.equal(accepted.length, 2);
    assert.equal(accepted[0]!.token, accepted[1]!.token);
    assert.notEqual(accepted[0]!.proof, accepted[1]!.proof);
    const thumbprints = await Promise.all(
      replicas.map(async (replica) => {
        const body = (await (await fetch(`${replica.admin}/connections`)).json()) as {
          connections: Array<{ dpop: { thumbprint: string } }>;
        };
        return body.connections[0]!.dpop.thumbprint;
      }),
    );
    assert.equal(thumbprints[0], thumbprints[1]);
  });

  it('a replica with another key never takes the shared token: the Redis entry is named by the thumbprint', async () => {
    const other = await spawnReplica(config(encodeKey(generateKey({ type: 'ec', curve: 'P-256' }).privateKey, 'pkcs8')));
    try {
      const before = oidc.tokenRequests;
      const checked = rs.checks.length;
      const response = await fetch(`${other.url}/api/orders`);
      assert.equal(response.status, 200, JSON.stringify(rs.checks.at(-1)));
      assert.ok(oidc.tokenRequests > before, 'it fetched a token bound to its own key');
      const [shared, own] = [rs.checks.find((c) => c.ok)!, rs.checks.at(-1)!];
      assert.equal(own.ok, true);
      assert.notEqual(own.token, shared.token);
      assert.deepEqual(
        rs.checks.slice(checked).filter((c) => /cnf\.jkt/.test(c.reason ?? '')),
        [],
        'the shared token was never presented with the other key',
      );
    } finally {
      await other.stop();
    }
  });
});
