/**
 * Single sign-on for the admin plane against a real OpenID provider (oidc-provider): people sign
 * in through its login page, get the editor or viewer role from their `groups` claim or no session
 * at all; what each role may do; the admin_audit trail; and the attacks on the relying party —
 * forged and tampered state, a replayed callback, a nonce changed on the way, forged session
 * cookies, and (from a provider that signs one thing wrong) a wrong audience, an unknown signing
 * key, an expired ID token and a wrong issuer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startHostileProvider, type HostileProvider } from './support/hostile-oidc.js';
import { CookieJar, listenPeopleProvider, signInAtProvider, step, type PeopleProvider } from './support/oidc-people.js';

const ADMIN_KEY = randomBytes(18).toString('base64url');
const CONSOLE_SECRET = randomBytes(24).toString('base64url');
const env = { ...process.env, TG_ADMIN_KEY: ADMIN_KEY, TG_CONSOLE_SECRET: CONSOLE_SECRET };
const SESSION = 'tokengate_session';

function yaml(issuer: string): string {
  return `admin:
  auth:
    apiKeys: [ { secret: admin-key } ]
    oidc:
      issuer: ${issuer}
      clientId: tokengate-console
      clientSecret: { secret: console-secret }
      scopes: [ openid, profile, email, groups ]
      roles: { claim: groups, editors: [ platform-admins ], viewers: [ platform-team ] }
  console: { edit: true }
secrets:
  admin-key: { env: TG_ADMIN_KEY }
  console-secret: { env: TG_CONSOLE_SECRET }
  orders-secret: { value: orders-secret-not-used-0123456789 }
connections:
  orders:
    clientId: orders-client
    tokenUrl: http://127.0.0.1:9/token
    clientSecret: { secret: orders-secret }
routes:
  - name: orders-api
    match: { pathPrefix: /orders }
    upstream: http://127.0.0.1:9
    auth: { connection: orders }
`;
}

interface SignIn {
  jar: CookieJar;
  /** The gateway's answer to the callback. */
  answer: Response;
  callbackUrl: string;
  session: string | undefined;
}

/** /auth/login on the gateway, the provider's login page, then the callback (optionally changed first). */
async function signIn(
  gw: TestGateway,
  login: string,
  tamper: (url: URL) => void = () => undefined,
  jar = new CookieJar(),
): Promise<SignIn> {
  const start = await step(jar, `${gw.admin}/auth/login`);
  assert.equal(start.status, 302);
  const authorization = new URL(start.headers.get('location') ?? '');
  tamper(authorization);
  const callbackUrl = await signInAtProvider(jar, authorization.href, login);
  codes.push(new URL(callbackUrl).searchParams.get('code') ?? '');
  const answer = await step(jar, callbackUrl);
  return { jar, answer, callbackUrl, session: jar.get(gw.admin, SESSION) };
}

async function call(gw: TestGateway, method: string, path: string, cookie: string | undefined, body?: unknown) {
  const response = await fetch(`${gw.admin}${path}`, {
    method,
    headers: {
      ...(cookie === undefined ? {} : { cookie: `${SESSION}=${cookie}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    json: JSON.parse(text || '{}') as Record<string, any>,
    type: response.headers.get('content-type') ?? '',
  };
}

/** Every authorization code a test saw, to check that none reached the logs. */
const codes: string[] = [];
const audits = (gw: TestGateway) => gw.logs.filter((line) => line.event === 'admin_audit');
/** The file's version, read with the admin key (reads need a session or a key). */
const version = async (gw: TestGateway) =>
  ((await (await fetch(`${gw.admin}/routes`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { version: string })
    .version;

describe('single sign-on with oidc-provider', () => {
  let idp: PeopleProvider;
  let gw: TestGateway;
  const sessionIds: string[] = [];

  before(async () => {
    idp = await listenPeopleProvider();
    gw = await startGateway(yaml(idp.issuer), { env });
    idp.start([{ client_id: 'tokengate-console', client_secret: CONSOLE_SECRET, redirect_uris: [`${gw.admin}/auth/callback`] }]);
  });
  after(async () => {
    await gw?.stop();
    await idp?.close();
  });

  it('/auth/login redirects to the provider with PKCE S256, state, nonce and the scopes; the sign-in cookie is HttpOnly and Lax', async () => {
    const response = await fetch(`${gw.admin}/auth/login`, { redirect: 'manual' });
    assert.equal(response.status, 302);
    const target = new URL(response.headers.get('location') ?? '');
    assert.equal(target.origin, idp.issuer);
    assert.equal(target.searchParams.get('response_type'), 'code');
    assert.equal(target.searchParams.get('client_id'), 'tokengate-console');
    assert.equal(target.searchParams.get('redirect_uri'), `${gw.admin}/auth/callback`);
    assert.equal(target.searchParams.get('scope'), 'openid profile email groups');
    assert.equal(target.searchParams.get('code_challenge_method'), 'S256');
    assert.match(target.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok((target.searchParams.get('state') ?? '').length >= 32);
    assert.ok((target.searchParams.get('nonce') ?? '').length >= 32);
    const cookie = response.headers.get('set-cookie') ?? '';
    assert.match(cookie, /^tokengate_login=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600/);
  });

  it('signs an editor in: 303 to /, an HttpOnly SameSite=Strict session, and GET /session names them with role editor', async () => {
    const { answer, session } = await signIn(gw, 'ed.itor');
    assert.equal(answer.status, 303);
    assert.equal(answer.headers.get('location'), '/');
    const set = answer.headers.getSetCookie().find((line) => line.startsWith(`${SESSION}=`)) ?? '';
    assert.match(set, /HttpOnly/);
    assert.match(set, /SameSite=Strict/);
    assert.match(set, /Max-Age=28800/, 'admin.sessions.ttl defaults to 8h');
    assert.ok(session !== undefined);
    sessionIds.push(session);
    const me = await call(gw, 'GET', '/session', session);
    assert.equal(me.status, 200);
    assert.deepEqual(me.json, { name: 'Edith Editor', role: 'editor', method: 'oidc', sub: 'ed.itor', email: 'edith@example.com' });
    const state = await call(gw, 'GET', '/console/state', session);
    assert.deepEqual(state.json.user, { name: 'Edith Editor', role: 'editor', method: 'oidc' });
    assert.deepEqual(state.json.signInWith, { key: true, sso: true });
    assert.ok(idp.userinfoRequests > 0, 'the groups claim came from userinfo (oidc-provider keeps it out of the ID token)');
    const signedIn = audits(gw).find((line) => line.action === 'sign_in' && line.sub === 'ed.itor');
    assert.deepEqual(
      { ...signedIn, time: undefined, level: undefined, pid: undefined, hostname: undefined, msg: undefined },
      {
        ...signedIn,
        time: undefined,
        level: undefined,
        pid: undefined,
        hostname: undefined,
        msg: undefined,
        event: 'admin_audit',
        method: 'oidc',
        email: 'edith@example.com',
        role: 'editor',
      },
    );
  });

  it("accepts an editor's change and audits it with their sub, email, role, action and target", async () => {
    const { session } = await signIn(gw, 'ed.itor');
    sessionIds.push(session ?? '');
    const answer = await call(gw, 'PUT', '/routes/orders-api/auth', session, { type: 'none', version: await version(gw) });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    const line = audits(gw).find((l) => l.action === 'route_auth_replace');
    assert.ok(line !== undefined);
    assert.equal(line.sub, 'ed.itor');
    assert.equal(line.email, 'edith@example.com');
    assert.equal(line.role, 'editor');
    assert.equal(line.method, 'oidc');
    assert.equal(line.target, 'routes.orders-api.auth');
    const restored = await call(gw, 'PUT', '/routes/orders-api/auth', session, { connection: 'orders', version: await version(gw) });
    assert.equal(restored.status, 200);
  });

  it('lets a viewer read config and usage and press Test, and refuses their changing calls with 403 ADMIN_FORBIDDEN', async () => {
    const { answer, session } = await signIn(gw, 'vi.ewer');
    assert.equal(answer.status, 303);
    sessionIds.push(session ?? '');
    assert.equal((await call(gw, 'GET', '/session', session)).json.role, 'viewer');
    for (const path of ['/routes', '/connections/orders', '/connections', '/usage', '/console/state'])
      assert.equal((await call(gw, 'GET', path, session)).status, 200, path);
    const test = await call(gw, 'POST', '/connections/orders/test', session);
    assert.equal(test.status, 502, 'Test runs for a viewer (the token endpoint is not there)');
    const file = readFileSync(gw.configFile);
    const v = await version(gw);
    for (const [method, path, body] of [
      [
        'PUT',
        '/connections/new',
        { clientId: 'x', tokenUrl: 'http://127.0.0.1:9/t', clientSecret: { secret: 'orders-secret' }, version: v },
      ],
      ['DELETE', `/connections/orders?version=${v}`, undefined],
      ['PUT', '/routes/orders-api/auth', { type: 'none', version: v }],
    ] as const) {
      const refused = await call(gw, method, path, session, body);
      assert.equal(refused.status, 403, `${method} ${path}`);
      assert.equal(refused.json.code, 'ADMIN_FORBIDDEN');
      assert.match(refused.type, /^application\/problem\+json/);
    }
    assert.deepEqual(readFileSync(gw.configFile), file);
  });

  it('gives a user with neither role 403 ADMIN_FORBIDDEN and no session, and audits the refusal', async () => {
    const { answer, session } = await signIn(gw, 'no.role');
    assert.equal(answer.status, 403);
    const problem = (await answer.json()) as Record<string, unknown>;
    assert.equal(problem.code, 'ADMIN_FORBIDDEN');
    assert.equal(session, undefined);
    assert.ok(!answer.headers.getSetCookie().some((line) => /^tokengate_session=[^;]/.test(line)));
    const refused = audits(gw).find((line) => line.action === 'sign_in_refused' && line.sub === 'no.role');
    assert.equal(refused?.reason, 'no role');
    assert.equal(refused?.email, 'nora@example.com');
  });

  it('shows a browser that lands on a refused callback a page, with the same status', async () => {
    const jar = new CookieJar();
    const response = await step(jar, `${gw.admin}/auth/callback?code=x&state=y`, { headers: { accept: 'text/html,*/*;q=0.8' } });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await response.text(), /Sign-in refused[\s\S]*ADMIN_AUTH_REQUIRED/);
  });

  it('ends the session on sign-out (audited), after which the cookie is worth nothing', async () => {
    const { session } = await signIn(gw, 'ed.itor');
    const out = await fetch(`${gw.admin}/session`, { method: 'DELETE', headers: { cookie: `${SESSION}=${session}` } });
    assert.equal(out.status, 204);
    assert.equal((await call(gw, 'GET', '/session', session)).status, 401);
    assert.ok(audits(gw).some((line) => line.action === 'sign_out' && line.sub === 'ed.itor'));
  });

  it('keeps admin keys for automation (role editor), audited by the key name', async () => {
    const me = await fetch(`${gw.admin}/session`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.deepEqual(await me.json(), { name: 'admin-key', role: 'editor', method: 'key', key: 'admin-key' });
    const signIn = await fetch(`${gw.admin}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: ADMIN_KEY }),
    });
    assert.equal(signIn.status, 204);
    const wrong = await fetch(`${gw.admin}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'nope' }),
    });
    assert.equal(wrong.status, 401);
    assert.ok(audits(gw).some((line) => line.action === 'sign_in' && line.key === 'admin-key' && line.role === 'editor'));
    assert.ok(audits(gw).some((line) => line.action === 'sign_in_refused' && line.method === 'key'));
  });

  it('ends the sessions a group gave once the group leaves the roles (the role is worked out on every request)', async () => {
    const { session } = await signIn(gw, 'vi.ewer');
    assert.equal((await call(gw, 'GET', '/session', session)).json.role, 'viewer');
    const text = readFileSync(gw.configFile, 'utf8');
    writeFileSync(gw.configFile, text.replace('viewers: [ platform-team ]', 'viewers: [ someone-else ]'));
    try {
      assert.equal((await gw.gateway.reload()).ok, true);
      assert.equal((await call(gw, 'GET', '/session', session)).status, 401);
      assert.equal((await call(gw, 'GET', '/routes', session)).status, 401);
    } finally {
      writeFileSync(gw.configFile, text);
      assert.equal((await gw.gateway.reload()).ok, true);
    }
  });

  describe('attacks', () => {
    it('refuses a callback with no sign-in in progress in this browser (forged state): 401, no session', async () => {
      const first = await signIn(gw, 'ed.itor', () => undefined);
      // Another browser (no login cookie) presented with a valid-looking callback: login CSRF.
      const victim = new CookieJar();
      const answer = await step(victim, first.callbackUrl);
      assert.equal(answer.status, 401);
      assert.equal(((await answer.json()) as Record<string, unknown>).code, 'ADMIN_AUTH_REQUIRED');
      assert.equal(victim.get(gw.admin, SESSION), undefined);
    });

    it('refuses a tampered state: 401, no session', async () => {
      const jar = new CookieJar();
      const start = await step(jar, `${gw.admin}/auth/login`);
      const callbackUrl = new URL(await signInAtProvider(jar, start.headers.get('location') ?? '', 'ed.itor'));
      callbackUrl.searchParams.set('state', `${callbackUrl.searchParams.get('state')}x`);
      const answer = await step(jar, callbackUrl.href);
      assert.equal(answer.status, 401);
      assert.equal(jar.get(gw.admin, SESSION), undefined);
      assert.ok(audits(gw).some((line) => line.action === 'sign_in_refused' && /state/i.test(String(line.reason))));
    });

    it('refuses a replayed callback, with the old sign-in cookie or a fresh sign-in in progress', async () => {
      const first = await signIn(gw, 'ed.itor');
      assert.equal(first.answer.status, 303);
      const loginCookie = /tokengate_login=([^;]*)/.exec(
        (await fetch(`${gw.admin}/auth/login`, { redirect: 'manual' })).headers.get('set-cookie') ?? '',
      )?.[1];
      assert.ok(loginCookie !== undefined);
      const replay = new CookieJar();
      replay.set(gw.admin, 'tokengate_login', loginCookie);
      const again = await step(replay, first.callbackUrl);
      assert.equal(again.status, 401, 'a code and state from an earlier sign-in do not match a new one');
      assert.equal(replay.get(gw.admin, SESSION), undefined);
      const same = new CookieJar();
      const started = await step(same, `${gw.admin}/auth/login`);
      const callbackUrl = await signInAtProvider(same, started.headers.get('location') ?? '', 'ed.itor');
      const usedLogin = same.get(gw.admin, 'tokengate_login') ?? '';
      assert.equal((await step(same, callbackUrl)).status, 303);
      const twice = new CookieJar();
      twice.set(gw.admin, 'tokengate_login', usedLogin);
      const replayed = await step(twice, callbackUrl);
      assert.equal(replayed.status, 401, 'a sign-in in progress is used once');
      assert.equal(twice.get(gw.admin, SESSION), undefined);
    });

    it('refuses an ID token whose nonce is not the one this sign-in sent (authorization request changed on the way)', async () => {
      const { answer, session } = await signIn(gw, 'ed.itor', (url) => url.searchParams.set('nonce', 'chosen-by-the-attacker-0123456789'));
      assert.equal(answer.status, 401);
      assert.equal(session, undefined);
      assert.ok(audits(gw).some((line) => line.action === 'sign_in_refused' && /nonce/i.test(String(line.reason))));
    });

    it('refuses a code issued without the PKCE challenge of this sign-in', async () => {
      const { answer, session } = await signIn(gw, 'ed.itor', (url) => url.searchParams.set('code_challenge', 'A'.repeat(43)));
      assert.equal(answer.status, 401);
      assert.equal(session, undefined);
    });

    it('refuses forged and tampered session cookies: 401 for reads of who, changes, and Test', async () => {
      const { session } = await signIn(gw, 'ed.itor');
      assert.ok(session !== undefined);
      const flipped = `${session.slice(0, -1)}${session.endsWith('A') ? 'B' : 'A'}`;
      for (const forged of [randomBytes(32).toString('base64url'), flipped, '', 'x'.repeat(5000)]) {
        assert.equal((await call(gw, 'GET', '/session', forged)).status, 401);
        const change = await call(gw, 'PUT', '/routes/orders-api/auth', forged, { type: 'none', version: await version(gw) });
        assert.equal(change.status, 401);
        assert.equal(change.json.code, 'ADMIN_AUTH_REQUIRED');
        assert.equal((await call(gw, 'POST', '/connections/orders/test', forged)).status, 401);
      }
      assert.equal((await call(gw, 'GET', '/session', session)).status, 200, 'the real one still works');
    });

    it('keeps sessions through a flood of sign-ins started by anyone (1,100 /auth/login, the memory store holds 1,000 per kind)', async () => {
      const { session } = await signIn(gw, 'ed.itor');
      for (let wave = 0; wave < 55; wave++) {
        await Promise.all(
          Array.from({ length: 20 }, async () => {
            const response = await fetch(`${gw.admin}/auth/login`, { redirect: 'manual' });
            assert.equal(response.status, 302);
          }),
        );
      }
      assert.equal((await call(gw, 'GET', '/session', session)).status, 200);
    });

    it('never logs a secret, an admin key, a code, a session id or a provider token', async () => {
      const text = gw.logText();
      for (const value of [ADMIN_KEY, CONSOLE_SECRET, ...sessionIds.filter((id) => id !== '')]) assert.ok(!text.includes(value));
      assert.ok(codes.length > 5);
      for (const code of codes) assert.ok(code.length > 20 && !text.includes(code), 'an authorization code was logged');
      for (const line of audits(gw)) for (const key of Object.keys(line)) assert.ok(!/token|secret|session|cookie/i.test(key), key);
    });
  });
});

describe('single sign-on against a provider that signs one thing wrong', () => {
  let idp: HostileProvider;
  let gw: TestGateway;
  before(async () => {
    idp = await startHostileProvider('tokengate-console', {
      sub: 'ed.itor',
      name: 'Edith Editor',
      email: 'edith@example.com',
      groups: ['platform-admins'],
    });
    gw = await startGateway(yaml(idp.issuer), { env });
  });
  after(async () => {
    await gw?.stop();
    await idp?.close();
  });

  async function attempt(): Promise<{ status: number; session: string | undefined }> {
    const jar = new CookieJar();
    const start = await step(jar, `${gw.admin}/auth/login`);
    const back = await step(jar, start.headers.get('location') ?? '');
    const answer = await step(jar, back.headers.get('location') ?? '');
    return { status: answer.status, session: jar.get(gw.admin, SESSION) };
  }

  it('signs in when nothing is wrong (the control)', async () => {
    idp.fault = 'none';
    const { status, session } = await attempt();
    assert.equal(status, 303);
    assert.ok(session !== undefined);
  });

  for (const [fault, reason] of [
    ['wrong-audience', /aud/],
    ['unknown-key', /signature|key|JWKS/i],
    ['expired', /exp/],
    ['wrong-issuer', /iss/],
  ] as const) {
    it(`refuses an ID token with ${fault}: 401, no session, the reason audited`, async () => {
      idp.fault = fault;
      const { status, session } = await attempt();
      assert.equal(status, 401);
      assert.equal(session, undefined);
      const line = audits(gw).at(-1);
      assert.equal(line?.action, 'sign_in_refused');
      assert.match(String(line?.reason), reason);
    });
  }
});
