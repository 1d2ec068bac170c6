/**
 * Rotation without restarts (docs/operations.md, runbooks): `{ file: }` secrets are followed
 * while serving. A Kubernetes-style symlink swap and a plain in-place write are both picked up, the
 * change is applied by a reload of its own and logged as `secret_reloaded` (the name, never the
 * value), cached tokens stay until they expire, the next token request uses the new secret, and
 * callers under steady traffic see no failure. Admin keys rotate the same way.
 */
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { startGateway, type TestGateway } from './support/gateway.js';
import { requireProgram } from './support/programs.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { json, startEchoUpstream, startTokenEndpoint, type TestServer } from './support/servers.js';

const OLD = 'rotation-secret-old-0123456789abcdef';
const NEW = 'rotation-secret-new-fedcba9876543210';

/** Resolves once `check()` holds, polled every 20 ms; fails after `ms`. */
async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Callers in a loop until stopped; every status they got (0: no answer at all). */
function steadyTraffic(url: string, callers = 4): { statuses: number[]; stop(): Promise<void> } {
  const statuses: number[] = [];
  let running = true;
  const loops = Array.from({ length: callers }, async () => {
    while (running) {
      try {
        const response = await fetch(url);
        await response.arrayBuffer();
        statuses.push(response.status);
      } catch {
        statuses.push(0);
      }
    }
  });
  return {
    statuses,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** The client secret a token request carried in Basic (RFC 6749 §2.3.1). */
function secretOf(authorization: string | undefined): string {
  const pair = Buffer.from((authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
  return decodeURIComponent(pair.slice(pair.indexOf(':') + 1));
}

describe('rotating a { file: } client secret without a restart', () => {
  let upstream: TestServer;
  let tokens: TestServer;
  /** The one secret the authorization server takes; switched at the moment of the swap. */
  let accepted = OLD;
  let refused = 0;

  before(async () => {
    upstream = await startEchoUpstream();
    tokens = await startTokenEndpoint((req, res, _body, index) => {
      if (secretOf(req.headers.authorization) !== accepted) {
        refused++;
        json(res, 401, { error: 'invalid_client' });
        return;
      }
      json(res, 200, { access_token: `tok-${index + 1}-${accepted === OLD ? 'old' : 'new'}`, token_type: 'Bearer', expires_in: 300 });
    });
  });

  after(async () => {
    await tokens.close();
    await upstream.close();
  });

  const yaml = (secretFile: string) => `
listen: { host: 127.0.0.1 }
secrets:
  partner: { file: ${secretFile} }
connections:
  partner-api:
    clientId: gw
    tokenUrl: ${tokens.url}/token
    clientSecret: { secret: partner }
    params: { scope: orders.read }
routes:
  - { name: a, match: { pathPrefix: /a }, upstream: ${upstream.url}, auth: { connection: partner-api } }
  - { name: b, match: { pathPrefix: /b }, upstream: ${upstream.url}, auth: { connection: partner-api, params: { scope: orders.write } } }
`;

  const tokenAt = async (gw: TestGateway, path: string) => {
    const response = await fetch(`${gw.url}${path}`);
    assert.equal(response.status, 200, path);
    return ((await response.json()) as { authorization: string }).authorization;
  };

  const reloadedSecrets = (gw: TestGateway) => gw.logs.filter((l) => l.event === 'secret_reloaded');

  it('follows a Kubernetes symlink swap under steady traffic: zero failed callers, cached token kept, the next token request uses the new secret', async () => {
    accepted = OLD;
    refused = 0;
    // The layout kubelet writes for a mounted Secret: partner → ..data/partner, ..data → a timestamped folder.
    const gw = await startGateway(yaml('mounted/partner'), {
      watch: true,
      prepare: (dir) => {
        const mounted = join(dir, 'mounted');
        mkdirSync(join(mounted, '..2026_12_04_01'), { recursive: true });
        writeFileSync(join(mounted, '..2026_12_04_01', 'partner'), OLD);
        symlinkSync('..2026_12_04_01', join(mounted, '..data'));
        symlinkSync(join('..data', 'partner'), join(mounted, 'partner'));
      },
    });
    let traffic: ReturnType<typeof steadyTraffic> | undefined;
    try {
      const mounted = join(gw.dir, 'mounted');
      const first = await tokenAt(gw, '/a/1');
      const running = steadyTraffic(`${gw.url}/a/orders`);
      traffic = running;
      await until(() => running.statuses.length >= 20, 'traffic before the swap');

      // kubelet's atomic update: a new timestamped folder, a new ..data link renamed over the old one.
      mkdirSync(join(mounted, '..2026_12_04_02'));
      writeFileSync(join(mounted, '..2026_12_04_02', 'partner'), NEW);
      symlinkSync('..2026_12_04_02', join(mounted, '..data_tmp'));
      renameSync(join(mounted, '..data_tmp'), join(mounted, '..data'));
      accepted = NEW;
      await until(() => reloadedSecrets(gw).length > 0, 'secret_reloaded');
      const seen = running.statuses.length;
      await until(() => running.statuses.length >= seen + 20, 'traffic after the swap');

      // A new token (another scope) is asked for with the new secret, and the server takes it.
      assert.match(await tokenAt(gw, '/b/1'), /-new$/);
      await running.stop();

      assert.deepEqual(new Set(running.statuses), new Set([200]), 'every caller got 200');
      assert.equal(refused, 0, 'no token request carried the old secret after the swap');
      assert.equal(await tokenAt(gw, '/a/2'), first, 'the cached token stays until it expires');
      const [line] = reloadedSecrets(gw);
      assert.equal(line!.secret, 'partner');
      assert.ok(!gw.logText().includes(OLD) && !gw.logText().includes(NEW), 'no secret value in the logs');
    } finally {
      await traffic?.stop();
      await gw.stop();
    }
  });

  it('follows an in-place write, and keeps the running value while the file is empty (truncated mid-write)', async () => {
    accepted = OLD;
    refused = 0;
    const gw = await startGateway(yaml('partner.secret'), { watch: true, files: { 'partner.secret': `${OLD}\n` } });
    try {
      const file = join(gw.dir, 'partner.secret');
      assert.match(await tokenAt(gw, '/a/1'), /-old$/);

      writeFileSync(file, '');
      await until(() => gw.logs.some((l) => l.event === 'config_reload_refused'), 'the refused reload of an empty secret');
      assert.equal(reloadedSecrets(gw).length, 0);
      assert.ok(
        gw.logs.some((l) => l.event === 'config_reload_problem' && l.path === 'secrets.partner.file' && /is empty/.test(String(l.message))),
      );

      writeFileSync(file, `${NEW}\n`);
      accepted = NEW;
      await until(() => reloadedSecrets(gw).length > 0, 'secret_reloaded');
      assert.match(await tokenAt(gw, '/b/1'), /-new$/);
      assert.equal(refused, 0);
    } finally {
      await gw.stop();
    }
  });
});

describe('rotating the cache key without a restart', requireProgram('redis-server', 'redis-server'), () => {
  let redis: RedisServer;
  let upstream: TestServer;
  let tokens: TestServer;
  const KEY_A = randomBytes(32).toString('base64');
  const KEY_B = randomBytes(32).toString('base64');

  before(async () => {
    redis = await startRedis();
    upstream = await startEchoUpstream();
    tokens = await startTokenEndpoint((_req, res, _body, index) =>
      json(res, 200, { access_token: `shared-${index + 1}`, token_type: 'Bearer', expires_in: 300 }),
    );
  });

  after(async () => {
    await tokens.close();
    await upstream.close();
    await redis.stop();
  });

  const yaml = () => `
listen: { host: 127.0.0.1 }
secrets:
  s: { value: cache-rotation-client-secret }
  cache-key: { file: cache.key }
cache:
  store: redis
  redis: { url: ${redis.url}, keyPrefix: "rotation:" }
  encryptionKey: { secret: cache-key }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s }, params: { scope: a } }
routes:
  - { name: a, match: { pathPrefix: /a }, upstream: ${upstream.url}, auth: { connection: c } }
  - { name: b, match: { pathPrefix: /b }, upstream: ${upstream.url}, auth: { connection: c, params: { scope: b } } }
`;

  it('a new key in the file is used for the entries written from then on; callers never notice', async () => {
    const first = await startGateway(yaml(), { watch: true, files: { 'cache.key': KEY_A } });
    let second: TestGateway | undefined;
    const traffic = steadyTraffic(`${first.url}/a/x`);
    try {
      await until(() => traffic.statuses.length >= 20, 'traffic before the rotation');
      writeFileSync(join(first.dir, 'cache.key.new'), KEY_B);
      renameSync(join(first.dir, 'cache.key.new'), join(first.dir, 'cache.key'));
      await until(() => first.logs.some((l) => l.event === 'secret_reloaded' && l.secret === 'cache-key'), 'secret_reloaded');
      // A token fetched after the rotation is stored under the new key: a replica that only knows it reads it.
      assert.equal((await fetch(`${first.url}/b/x`)).status, 200);
      const fetched = tokens.received.length;
      second = await startGateway(yaml(), { files: { 'cache.key': KEY_B } });
      assert.equal((await fetch(`${second.url}/b/x`)).status, 200);
      assert.equal(tokens.received.length, fetched, 'the replica with the new key read the entry instead of fetching');
      const seen = traffic.statuses.length;
      await until(() => traffic.statuses.length >= seen + 20, 'traffic after the rotation');
      await traffic.stop();
      assert.deepEqual(new Set(traffic.statuses), new Set([200]), 'every caller got 200');
      assert.ok(!first.logText().includes(KEY_A) && !first.logText().includes(KEY_B), 'no key in the logs');
    } finally {
      await traffic.stop();
      await second?.stop();
      await first.stop();
    }
  });
});

describe('rotating an admin key without a restart', () => {
  let tokens: TestServer;

  before(async () => {
    tokens = await startTokenEndpoint((_req, res, _body, index) => json(res, 200, { access_token: `t-${index}`, token_type: 'Bearer' }));
  });

  after(() => tokens.close());

  it('two keys overlap: scripts move to the new one, the old one is retired, no call is refused meanwhile', async () => {
    const KEY_1 = 'admin-key-one-0123456789abcdef0123';
    const KEY_2 = 'admin-key-two-fedcba9876543210fedc';
    const PLACEHOLDER = 'admin-key-unused-placeholder-000000';
    const gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
admin:
  auth: { apiKeys: [ { secret: admin-key }, { secret: admin-key-next } ] }
secrets:
  admin-key: { file: admin.key }
  admin-key-next: { file: admin-next.key }
  s: { value: client-secret-for-admin-rotation }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes: []
`,
      { watch: true, files: { 'admin.key': KEY_1, 'admin-next.key': PLACEHOLDER } },
    );
    let running = true;
    let script: Promise<void> | undefined;
    try {
      let key = KEY_1;
      const statuses: number[] = [];
      // A script calling the admin API (the Test button's call needs the key) in a loop.
      script = (async () => {
        while (running) {
          try {
            const response = await fetch(`${gw.admin}/connections/c/test`, {
              method: 'POST',
              headers: { authorization: `Bearer ${key}` },
            });
            await response.arrayBuffer();
            statuses.push(response.status);
          } catch {
            statuses.push(0);
          }
        }
      })();
      const reloaded = (n: number) => until(() => gw.logs.filter((l) => l.event === 'secret_reloaded').length >= n, 'secret_reloaded');
      await until(() => statuses.length >= 5, 'calls with the first key');

      writeFileSync(join(gw.dir, 'admin-next.key'), KEY_2); // 1. the new key next to the old one
      await reloaded(1);
      key = KEY_2; // 2. scripts move to it
      const moved = statuses.length;
      await until(() => statuses.length >= moved + 5, 'calls with the second key');
      writeFileSync(join(gw.dir, 'admin.key'), PLACEHOLDER); // 3. the old key retired
      await reloaded(2);
      const retired = statuses.length;
      await until(() => statuses.length >= retired + 5, 'calls after the retirement');
      running = false;
      await script;

      assert.deepEqual(new Set(statuses), new Set([200]), 'no call was refused');
      const old = await fetch(`${gw.admin}/connections/c/test`, { method: 'POST', headers: { authorization: `Bearer ${KEY_1}` } });
      assert.equal(old.status, 401, 'the retired key no longer works');
    } finally {
      running = false;
      await script;
      await gw.stop();
    }
  });
});
