/**
 * Console sessions shared by a fleet (`admin.sessions.store: redis`): two `node dist/cli.js serve`
 * processes on one real Redis. A sign-in started on one replica finishes on the other, a session
 * from either works on both, and sign-out on one ends it on both. What Redis holds is sealed with
 * cache.encryptionKey: no session id, name, email or provider token in a key or a value.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { after, before, describe, it } from 'node:test';
import { spawnReplica, type Replica } from './support/fleet.js';
import { writeConfig } from './support/gateway.js';
import { CookieJar, listenPeopleProvider, signInAtProvider, step, type PeopleProvider } from './support/oidc-people.js';
import { requireProgram } from './support/programs.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { freePort } from './support/servers.js';

const ADMIN_KEY = randomBytes(18).toString('base64url');
const CONSOLE_SECRET = randomBytes(24).toString('base64url');
const CACHE_KEY = randomBytes(32).toString('base64');
const env = { TG_ADMIN_KEY: ADMIN_KEY, TG_CONSOLE_SECRET: CONSOLE_SECRET, TG_CACHE_KEY: CACHE_KEY, LOG_LEVEL: 'info' };
const SESSION = 'tokengate_session';

function yaml(redis: string, issuer: string, adminPort: number, callbackPort: number): string {
  return `listen: { host: 127.0.0.1, port: 0 }
admin:
  port: ${adminPort}
  auth:
    apiKeys: [ { secret: admin-key } ]
    oidc:
      issuer: ${issuer}
      clientId: tokengate-console
      clientSecret: { secret: console-secret }
      redirectUrl: http://127.0.0.1:${callbackPort}/auth/callback
      scopes: [ openid, profile, email, groups ]
      roles: { claim: groups, editors: [ platform-admins ], viewers: [ platform-team ] }
  sessions: { store: redis, ttl: 15m }
cache:
  redis: { url: ${redis}, keyPrefix: "fleet-test:" }
  encryptionKey: { secret: cache-key }
secrets:
  admin-key: { env: TG_ADMIN_KEY }
  console-secret: { env: TG_CONSOLE_SECRET }
  cache-key: { env: TG_CACHE_KEY }
`;
}

const who = async (replica: Replica, session: string | undefined) => {
  const response = await fetch(`${replica.admin}/session`, { headers: session === undefined ? {} : { cookie: `${SESSION}=${session}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe('console sessions shared by two replicas through Redis', requireProgram('redis-server', 'redis-server'), () => {
  let redis: RedisServer;
  let idp: PeopleProvider;
  let a: Replica;
  let b: Replica;
  let client: Redis;
  let fileA: string;

  before(async () => {
    redis = await startRedis();
    idp = await listenPeopleProvider();
    const [portA, portB] = [await freePort(), await freePort()];
    // Both name replica B's callback, as a fleet names its load balancer's.
    fileA = writeConfig(yaml(redis.url, idp.issuer, portA, portB)).configFile;
    const fileB = writeConfig(yaml(redis.url, idp.issuer, portB, portB)).configFile;
    [a, b] = await Promise.all([spawnReplica(fileA, env), spawnReplica(fileB, env)]);
    idp.start([
      { client_id: 'tokengate-console', client_secret: CONSOLE_SECRET, redirect_uris: [`http://127.0.0.1:${portB}/auth/callback`] },
    ]);
    client = new Redis(redis.url);
  });
  after(async () => {
    client?.disconnect();
    await Promise.all([a?.stop(), b?.stop()]);
    await idp?.close();
    await redis?.stop();
  });

  let session: string | undefined;

  it('finishes on replica B a sign-in started on replica A, and both accept the session', async () => {
    const jar = new CookieJar();
    const start = await step(jar, `${a.admin}/auth/login`);
    assert.equal(start.status, 302);
    const callback = await signInAtProvider(jar, start.headers.get('location') ?? '', 'ed.itor');
    assert.equal(new URL(callback).origin, b.admin);
    // The browser's cookies are per host, not per port: the sign-in cookie A set goes to B.
    jar.set(b.admin, 'tokengate_login', jar.get(a.admin, 'tokengate_login') ?? '');
    const answer = await step(jar, callback);
    assert.equal(answer.status, 303);
    session = jar.get(b.admin, SESSION);
    assert.ok(session !== undefined);
    for (const replica of [a, b]) {
      const me = await who(replica, session);
      assert.equal(me.status, 200);
      assert.equal(me.body.name, 'Edith Editor');
      assert.equal(me.body.role, 'editor');
    }
  });

  it('accepts on replica B a key session started on replica A', async () => {
    const signIn = await fetch(`${a.admin}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: ADMIN_KEY }),
    });
    assert.equal(signIn.status, 204);
    const keySession = /tokengate_session=([^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')?.[1];
    const me = await who(b, keySession);
    assert.equal(me.status, 200);
    assert.equal(me.body.key, 'admin-key');
  });

  it('keeps only sealed entries in Redis: no session id, name, email or token in any key or value', async () => {
    const keys = await client.keys('fleet-test:admin:*');
    assert.ok(keys.length >= 2);
    const values = await Promise.all(keys.map((key) => client.get(key)));
    const everything = keys.join('\n') + values.join('\n');
    for (const value of [session ?? 'missing', 'Edith', 'edith@example.com', 'ed.itor', 'platform-admins', ADMIN_KEY])
      assert.ok(!everything.includes(value), `${value} is readable in Redis`);
    for (const value of values) assert.match(value ?? '', /^v1\.[0-9a-f]{8}\./);
    const ttl = await client.pttl(keys.find((key) => key.includes(':session:')) ?? '');
    assert.ok(ttl > 0 && ttl <= 15 * 60_000, `the session expires in Redis with admin.sessions.ttl (${ttl} ms)`);
  });

  it('refuses an entry moved to another id in Redis (the key is bound into the seal)', async () => {
    const [from] = await client.keys('fleet-test:admin:session:*');
    assert.ok(from !== undefined);
    const forged = randomBytes(32).toString('base64url');
    const forgedKey = `fleet-test:admin:session:${createHash('sha256').update(forged).digest('base64url')}`;
    await client.set(forgedKey, (await client.get(from)) ?? '', 'PX', 60_000);
    assert.equal((await who(a, forged)).status, 401);
  });

  it('ends the session on both replicas when it signs out on one', async () => {
    const out = await fetch(`${a.admin}/session`, { method: 'DELETE', headers: { cookie: `${SESSION}=${session}` } });
    assert.equal(out.status, 204);
    assert.equal((await who(b, session)).status, 401);
    assert.equal((await who(a, session)).status, 401);
    const line = await a.waitForLog((l) => l.event === 'admin_audit' && l.action === 'sign_out');
    assert.equal(line.sub, 'ed.itor');
  });

  it('after a rotated cache.encryptionKey (reload), sessions sealed under the old key read as signed out', async () => {
    const keySignIn = async (replica: Replica) => {
      const response = await fetch(`${replica.admin}/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: ADMIN_KEY }),
      });
      assert.equal(response.status, 204);
      return /tokengate_session=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1];
    };
    const old = await keySignIn(a);
    assert.equal((await who(a, old)).status, 200);
    const newKey = randomBytes(32).toString('base64');
    writeFileSync(fileA, readFileSync(fileA, 'utf8').replace('cache-key: { env: TG_CACHE_KEY }', `cache-key: { value: "${newKey}" }`));
    const from = a.logs.length;
    a.child.kill('SIGHUP');
    await a.waitForLog((line) => line.event === 'config_reloaded', from);
    assert.equal((await who(a, old)).status, 401, 'sealed under the old key');
    const fresh = await keySignIn(a);
    assert.equal((await who(a, fresh)).status, 200);
    assert.equal((await who(b, fresh)).status, 401, 'B still holds the old key until it is reloaded too');
  });
});
