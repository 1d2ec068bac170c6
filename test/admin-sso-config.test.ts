/**
 * `admin.auth.oidc` and `admin.sessions` as the loader (and `validate`) sees them: every mistake at
 * its key path, durations, and the single sign-on client authenticating with private_key_jwt
 * exactly as a connection does, against oidc-provider.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors.js';
import { parseDuration } from '../src/config/duration.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { encodeKey, generateKey } from './support/keys.js';
import { CookieJar, listenPeopleProvider, signInAtProvider, step, type PeopleProvider } from './support/oidc-people.js';

const oidcBlock = (extra = '', issuer = 'https://login.example.com') => `
    oidc:
      issuer: ${issuer}
      clientId: tokengate-console
      roles: { claim: groups, editors: [ admins ] }
${extra}`;

function yaml(admin: string, more = ''): string {
  return `admin:
${admin}
secrets:
  console-secret: { value: console-secret-0123456789abcdef0123456789 }
  not-a-key: { value: just-a-password }
${more}`;
}

async function problemsOf(text: string): Promise<Array<{ path: string; message: string }>> {
  try {
    await buildConfigTextOnly(text, 'gateway.yaml', { env: {} });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return [...error.problems];
  }
  return [];
}

const withSecret = (extra = '', issuer?: string) =>
  `  auth:${oidcBlock(`      clientSecret: { secret: console-secret }\n${extra}`, issuer)}`;

describe('admin.auth.oidc and admin.sessions in the config', () => {
  it('loads a minimal single sign-on block with its defaults (scopes, redirect URL, memory sessions for 8h)', async () => {
    const config = await buildConfigTextOnly(yaml(withSecret()), 'gateway.yaml', { env: {} });
    const oidc = config.admin.auth?.oidc;
    assert.deepEqual(oidc?.scopes, ['openid', 'profile', 'email']);
    assert.equal(oidc?.redirectUrl, undefined);
    assert.deepEqual(config.admin.auth?.apiKeys, []);
    assert.deepEqual(config.admin.sessions, { store: 'memory', ttlMs: 8 * 3_600_000 });
    assert.ok(oidc?.clientAuth !== undefined, 'the compile stage built the client authentication');
  });

  it('reads durations as a number and a unit', () => {
    assert.equal(parseDuration('20s'), 20_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('8h'), 28_800_000);
    for (const bad of ['8', '8d', '1.5h', '-1h', ' 8h', '']) assert.equal(parseDuration(bad), undefined, bad);
  });

  for (const [name, text, path, message] of [
    ['neither apiKeys nor oidc', yaml('  auth: {}'), 'admin.auth', /apiKeys, oidc, or both/],
    ['an http: issuer off loopback', yaml(withSecret('', 'http://login.example.com')), 'admin.auth.oidc.issuer', /https/],
    ['scopes without openid', yaml(withSecret('      scopes: [ profile ]')), 'admin.auth.oidc.scopes', /openid/],
    ['no role values', yaml(withSecret().replace('editors: [ admins ]', 'editors: []')), 'admin.auth.oidc.roles', /editors or viewers/],
    ['no client authentication', yaml(`  auth:${oidcBlock()}`), 'admin.auth.oidc', /exactly one of clientSecret and privateKeyJwt/],
    [
      'an unknown secret',
      yaml(withSecret().replace('secret: console-secret', 'secret: nope')),
      'admin.auth.oidc.clientSecret.secret',
      /unknown secret/,
    ],
    [
      'a private key that is not one',
      yaml(`  auth:${oidcBlock('      privateKeyJwt: { secret: not-a-key }')}`),
      'admin.auth.oidc.privateKeyJwt.secret',
      /key/i,
    ],
    ['a session ttl without a unit', yaml(`${withSecret()}  sessions: { ttl: 8 }`), 'admin.sessions.ttl', /./],
    ['a session ttl in days', yaml(`${withSecret()}  sessions: { ttl: 8d }`), 'admin.sessions.ttl', /s, m or h/],
    ['a session ttl under a minute', yaml(`${withSecret()}  sessions: { ttl: 30s }`), 'admin.sessions.ttl', /between 1m and 168h/],
    [
      'redis sessions without cache.encryptionKey',
      yaml(`${withSecret()}  sessions: { store: redis }`),
      'admin.sessions.store',
      /encryptionKey/,
    ],
    [
      "the single sign-on client's secret as a connection's",
      yaml(
        withSecret(),
        'connections:\n  partner:\n    clientId: p\n    tokenUrl: https://evil.example/token\n    clientSecret: { secret: console-secret }\n',
      ),
      'connections.partner.clientSecret.secret',
      /admin\.auth\.oidc\.clientSecret/,
    ],
  ] as const) {
    it(`refuses ${name} at ${path}`, async () => {
      const problems = await problemsOf(text);
      const problem = problems.find((p) => p.path === path);
      assert.ok(problem !== undefined, JSON.stringify(problems));
      assert.match(problem.message, message);
      assert.ok(!JSON.stringify(problems).includes('console-secret-0123456789abcdef0123456789'), 'no secret in a problem');
    });
  }
});

describe('single sign-on with private_key_jwt against oidc-provider', () => {
  let idp: PeopleProvider;
  let gw: TestGateway;
  const key = generateKey({ type: 'ec', curve: 'P-256' });
  before(async () => {
    idp = await listenPeopleProvider({ claimsInIdToken: true });
    gw = await startGateway(
      yaml(
        `  auth:${oidcBlock('      privateKeyJwt: { secret: console-key, algorithm: ES256, keyId: console-1 }\n      scopes: [ openid, profile, email, groups ]', idp.issuer).replace('editors: [ admins ]', 'editors: [ platform-admins ]')}`,
        `  console-key: { value: ${JSON.stringify(encodeKey(key.privateKey, 'pkcs8'))} }\n`,
      ),
    );
    idp.start([
      {
        client_id: 'tokengate-console',
        redirect_uris: [`${gw.admin}/auth/callback`],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [key.publicJwk('console-1')] },
      },
    ]);
  });
  after(async () => {
    await gw?.stop();
    await idp?.close();
  });

  it('signs an editor in, reading the roles claim from the ID token (no userinfo call)', async () => {
    const jar = new CookieJar();
    const start = await step(jar, `${gw.admin}/auth/login`);
    const answer = await step(jar, await signInAtProvider(jar, start.headers.get('location') ?? '', 'ed.itor'));
    assert.equal(answer.status, 303);
    const me = await fetch(`${gw.admin}/session`, { headers: { cookie: `tokengate_session=${jar.get(gw.admin, 'tokengate_session')}` } });
    assert.equal(((await me.json()) as { role: string }).role, 'editor');
    assert.equal(idp.userinfoRequests, 0);
  });
});
