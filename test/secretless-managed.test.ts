/**
 * privateKeyJwt.managed against oidc-provider: a client registered with a `jwks_uri` at the
 * gateway's /jwks/KEY.json gets tokens while the gateway rotates its keys every 10 s, and no
 * caller sees an error across two rotations; the JWKS itself; the config checks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { launchChromium, requireChromium } from './support/browser.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { honourJwksMaxAge, recordGrants, type Grants } from './support/secretless.js';
import { freePort, startEchoUpstream, type TestServer } from './support/servers.js';
import { waitFor } from './support/wait.js';

const ROTATE_EVERY_S = 10;
const OVERLAP_S = 4;
/** Short tokens, so that token requests (and so signatures) keep coming under traffic. */
const TOKEN_TTL_S = 3;

describe('managed keys rotating under traffic, against oidc-provider', () => {
  let oidc: OidcServer;
  let upstream: TestServer;
  let running: TestGateway;
  let grants: Grants;
  let jwksUrl: string;

  before(async () => {
    const adminPort = await freePort();
    jwksUrl = `http://127.0.0.1:${adminPort}/jwks/managed.json`;
    oidc = await startOidcProvider([{ client_id: 'managed-client', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksUrl }], {
      ttlSeconds: TOKEN_TTL_S,
      loopbackJwksUri: true,
    });
    grants = recordGrants(oidc);
    await honourJwksMaxAge(oidc, 'managed-client', Math.floor(OVERLAP_S / 2));
    upstream = await startEchoUpstream();
    running = await startGateway(
      `
listen: { host: 127.0.0.1, port: 0 }
logging: { accessLog: off }
connections:
  managed:
    clientId: managed-client
    tokenUrl: ${oidc.tokenUrl}
    privateKeyJwt:
      managed: { algorithm: ES256, rotateEvery: ${ROTATE_EVERY_S}s, overlap: ${OVERLAP_S}s }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: ${upstream.url}
    auth: { connection: managed }
`,
      { adminPort },
    );
  });

  after(async () => {
    await running?.stop();
    await upstream?.close();
    await oidc?.close();
  });

  it('publishes the signing keys at /jwks/KEY.json: public parts, kid = RFC 7638 thumbprint, max-age shorter than the overlap', async () => {
    const response = await fetch(jwksUrl);
    assert.equal(response.status, 200);
    const maxAge = Number(/max-age=(\d+)/.exec(response.headers.get('cache-control') ?? '')?.[1]);
    assert.ok(maxAge < OVERLAP_S, `max-age ${maxAge} < overlap ${OVERLAP_S}`);
    const { keys } = (await response.json()) as { keys: JWK[] };
    assert.ok(keys.length >= 1);
    for (const key of keys) {
      assert.equal(key.d, undefined, 'no private part');
      assert.equal(key.alg, 'ES256');
      assert.equal(key.kid, await calculateJwkThumbprint(key, 'sha256'));
    }
    const unknown = await fetch(jwksUrl.replace('managed.json', 'nope.json'));
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { code: string }).code, 'NOT_FOUND');
  });

  it('serves callers across two rotations with no error, every rotated key accepted by the server', async () => {
    const signing = () => running.logs.filter((line) => line.event === 'managed_key_signing').map((line) => String(line.kid));
    const firstKid = signing()[0];
    assert.ok(firstKid !== undefined);
    const statuses = new Map<number, number>();
    let stop = false;
    const caller = async () => {
      while (!stop) {
        const response = await fetch(`${running.gateway.proxyUrl}/api/orders`);
        await response.arrayBuffer();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      }
    };
    const callers = [caller(), caller(), caller()];
    const requestsBefore = oidc.tokenRequests;
    try {
      // Two rotations: the third key signs, and the server has issued a token for an assertion it signed.
      await waitFor(() => signing().length >= 3, 'two rotations (managed_key_signing)', 40_000);
      const third = signing()[2]!;
      await waitFor(() => grants.kids.includes(third), 'a token for an assertion signed by the third key', 40_000);
    } finally {
      stop = true;
      await Promise.all(callers);
    }
    const kids = signing().slice(0, 3);
    for (const kid of kids) assert.ok(grants.kids.includes(kid), `the server accepted assertions signed by ${kid}`);
    const failures = [...statuses].filter(([status]) => status !== 200).reduce((sum, [, count]) => sum + count, 0);
    const calls = [...statuses.values()].reduce((sum, count) => sum + count, 0);
    const tokenRequests = oidc.tokenRequests - requestsBefore;
    // Each rotated key was in the JWKS `overlap` before it signed (the first one could not be announced).
    const at = (event: string, kid: string) => Number(running.logs.find((line) => line.event === event && line.kid === kid)?.time);
    const leads = kids.slice(1).map((kid) => at('managed_key_signing', kid) - at('managed_key_published', kid));
    // The figures the closing note asks for.
    process.stdout.write(
      `# managed rotation: ${calls} caller requests, ${failures} failed; ${tokenRequests} token requests, ` +
        `${grants.errors.length} refused by the server (${grants.errors.join(', ') || 'none'}); new keys published ${leads.join(' and ')} ms before they signed\n`,
    );
    for (const [i, kid] of kids.slice(1).entries()) {
      const lead = leads[i]!;
      // Half the overlap at least: timers run late on a loaded machine, but never by seconds.
      assert.ok(lead >= (OVERLAP_S * 1000) / 2, `${kid} published ${lead} ms before it signed`);
    }
    assert.equal(failures, 0, `caller-visible failures: ${JSON.stringify([...statuses])}`);
    assert.deepEqual(grants.errors, [], 'the server refused no assertion');
    assert.ok(!running.logText().includes('"d":"'), 'no private key in the logs');
  });

  it('shows the JWKS path and the keys ages in /connections', async () => {
    const body = (await (await fetch(`${running.gateway.adminUrl}/connections`)).json()) as {
      connections: Array<{
        connection: string;
        managedKeys: { jwksPath: string; keys: Array<{ kid: string; state: string; ageSeconds: number }> };
      }>;
    };
    const managed = body.connections.find((c) => c.connection === 'managed')!;
    assert.equal(managed.managedKeys.jwksPath, '/jwks/managed.json');
    assert.ok(managed.managedKeys.keys.some((key) => key.state === 'signing'));
    for (const key of managed.managedKeys.keys) assert.ok(key.ageSeconds >= 0);
  });

  it('shows the JWKS URL to give to the partner and the keys ages in the console', requireChromium(), async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(8_000);
      await page.goto(running.gateway.adminUrl);
      await page.locator('code', { hasText: jwksUrl }).waitFor();
      await page.getByText(/ signing, \d+ (s|min) old/).waitFor();
    } finally {
      await browser.close();
    }
  });
});

describe('privateKeyJwt.managed config checks', () => {
  const base = (block: string, cache = '') => `
secrets:
  key: { value: not-a-key }
  cache-key: { value: ${Buffer.alloc(32, 7).toString('base64')} }
${cache}
connections:
  c:
    clientId: x
    tokenUrl: http://127.0.0.1:1/token
${block}
`;
  const problems = async (yaml: string): Promise<string[]> => {
    try {
      await buildConfigTextOnly(yaml, 'gateway.yaml');
    } catch (error) {
      if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
      throw error;
    }
    return [];
  };

  it('refuses a rotation shorter than 10s, a zero overlap and a unit-less duration at their key paths', async () => {
    const found = await problems(base('    privateKeyJwt: { managed: { rotateEvery: 5s, overlap: 0s } }'));
    assert.ok(
      found.some((p) => p.startsWith('connections.c.privateKeyJwt.managed.rotateEvery: must be at least 10s')),
      found.join('\n'),
    );
    assert.ok(
      found.some((p) => p.startsWith('connections.c.privateKeyJwt.managed.overlap:')),
      found.join('\n'),
    );
    const unitless = await problems(base('    privateKeyJwt: { managed: { rotateEvery: "3600" } }'));
    assert.ok(unitless.some((p) => p.startsWith('connections.c.privateKeyJwt.managed.rotateEvery: must be a number and a unit')));
  });

  it('refuses a key secret, keyId or certificate next to managed', async () => {
    const found = await problems(base('    privateKeyJwt: { secret: key, managed: {} }'));
    assert.ok(
      found.some((p) => p.startsWith('connections.c.privateKeyJwt: set exactly one of secret')),
      found.join('\n'),
    );
    const keyId = await problems(base('    privateKeyJwt: { keyId: k1, managed: {} }'));
    assert.ok(
      keyId.some((p) => p.startsWith('connections.c.privateKeyJwt.keyId: not used with managed')),
      keyId.join('\n'),
    );
  });

  it('needs cache.encryptionKey to share keys through Redis, and warns that a fleet needs Redis', async () => {
    const plaintext = await problems(base('    privateKeyJwt: { managed: {} }', 'cache: { store: redis, allowPlaintext: true }'));
    assert.ok(
      plaintext.some((p) => p.startsWith('connections.c.privateKeyJwt.managed: with cache.store: redis')),
      plaintext.join('\n'),
    );
    const shared = await buildConfigTextOnly(
      base('    privateKeyJwt: { managed: {} }', 'cache: { store: redis, encryptionKey: { secret: cache-key } }'),
      'gateway.yaml',
    );
    assert.ok(!shared.warnings.some((w) => w.includes('managed')));
    const memory = await buildConfigTextOnly(base('    privateKeyJwt: { managed: { rotateEvery: 24h, overlap: 1h } }'), 'gateway.yaml');
    assert.ok(memory.warnings.some((w) => w.includes('privateKeyJwt.managed') && w.includes('cache.store: redis')));
  });
});
