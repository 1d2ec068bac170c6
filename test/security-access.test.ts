/**
 * The access policy: a caller without a valid key, or from outside the allowed networks, is
 * refused with ACCESS_DENIED and never makes the gateway ask the authorization server for a token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';

const CLIENT_SECRET = 'access-test-client-secret-0123456789';
const TEAM_A_KEY = 'team-a-key-4f1c0d2e9b8a';
const TEAM_B_KEY = 'team-b-key-77aa31c5d0e2';

describe('access policy', () => {
  let oidc: OidcServer;
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    oidc = await startOidcProvider([{ client_id: 'gw', client_secret: CLIENT_SECRET }]);
    upstream = await startEchoUpstream();
    const route = (name: string, access = '') => `
  - name: ${name}
    match: { pathPrefix: /${name} }
    upstream: ${upstream.url}
    auth: { connection: c }${access}`;
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  client: { env: TG_CLIENT }
  team-a: { env: TG_TEAM_A }
  team-b: { env: TG_TEAM_B }
access:
  apiKeys: [ { secret: team-a }, { secret: team-b } ]
connections:
  c:
    clientId: gw
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: client }
routes: ${route('keyed')}
${route('far-away', '\n    access: { allowFrom: [10.0.0.0/8, "fd00::/8"] }')}
${route('loopback', '\n    access: { allowFrom: [127.0.0.0/8] }')}
${route('both', '\n    access: { header: X-Team-Key, apiKeys: [ { secret: team-b } ], allowFrom: [127.0.0.1/32] }')}
${route('both-far', '\n    access: { apiKeys: [ { secret: team-a } ], allowFrom: [192.168.0.0/16] }')}
`,
      { env: { ...process.env, TG_CLIENT: CLIENT_SECRET, TG_TEAM_A: TEAM_A_KEY, TG_TEAM_B: TEAM_B_KEY } },
    );
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await oidc.close();
  });

  /** Sends the request and checks the refusal; the token endpoint must not have been called. */
  async function assertRefused(
    path: string,
    headers: Record<string, string>,
    status: 401 | 403,
    route: string,
    reason: string,
  ): Promise<void> {
    const tokensBefore = oidc.tokenRequests;
    const upstreamBefore = upstream.received.length;
    const deniedBefore = await deniedCount(route, reason);
    const response = await fetch(`${gw.url}${path}`, { headers });
    assert.equal(response.status, status);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    const problem = (await response.json()) as Record<string, unknown>;
    assert.equal(problem.code, 'ACCESS_DENIED');
    assert.equal(problem.route, route === 'unmatched' ? undefined : route);
    assert.equal(oidc.tokenRequests, tokensBefore, 'the token endpoint was called for a refused caller');
    assert.equal(upstream.received.length, upstreamBefore);
    assert.equal(await deniedCount(route, reason), deniedBefore + 1);
  }

  async function deniedCount(route: string, reason: string): Promise<number> {
    const text = await (await fetch(`${gw.admin}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('tokengate_access_denied_total{') && l.includes(`route="${route}"`) && l.includes(`reason="${reason}"`));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  }

  it('refuses a caller without a key with 401 and requests no token', async () => {
    await assertRefused('/keyed/x', {}, 401, 'keyed', 'missing_key');
    await assertRefused('/keyed/x', { 'x-gateway-key': '' }, 401, 'keyed', 'missing_key');
    assert.equal(oidc.tokenRequests, 0);
  });

  it('refuses a wrong key, two keys in one header and a truncated key with 401', async () => {
    await assertRefused('/keyed/x', { 'x-gateway-key': 'not-the-key' }, 401, 'keyed', 'wrong_key');
    await assertRefused('/keyed/x', { 'x-gateway-key': `${TEAM_A_KEY}, ${TEAM_B_KEY}` }, 401, 'keyed', 'wrong_key');
    await assertRefused('/keyed/x', { 'x-gateway-key': TEAM_A_KEY.slice(0, -1) }, 401, 'keyed', 'wrong_key');
    assert.equal(oidc.tokenRequests, 0);
  });

  it('refuses an address outside allowFrom with 403 and requests no token', async () => {
    await assertRefused('/far-away/x', {}, 403, 'far-away', 'address');
    assert.equal(oidc.tokenRequests, 0);
  });

  it('checks both when a policy has keys and networks: a valid key from outside the networks is 403', async () => {
    await assertRefused('/both-far/x', { 'x-gateway-key': TEAM_A_KEY }, 403, 'both-far', 'address');
    await assertRefused('/both/x', {}, 401, 'both', 'missing_key');
    await assertRefused('/both/x', { 'x-gateway-key': TEAM_B_KEY }, 401, 'both', 'missing_key');
    assert.equal(oidc.tokenRequests, 0);
  });

  it('lets a caller with any of the keys through, and never forwards the key', async () => {
    for (const key of [TEAM_A_KEY, TEAM_B_KEY]) {
      const response = await fetch(`${gw.url}/keyed/x`, { headers: { 'x-gateway-key': key } });
      assert.equal(response.status, 200);
      const seen = upstream.received.at(-1)!;
      assert.equal(seen.headers['x-gateway-key'], undefined);
      assert.ok(!seen.rawHeaders.some((h) => h.includes(key)));
      assert.match(seen.headers.authorization ?? '', /^Bearer /);
    }
  });

  it('refuses a caller without a key on a path no route matches, so it cannot map the routes', async () => {
    await assertRefused('/nowhere/x', {}, 401, 'unmatched', 'missing_key');
    const response = await fetch(`${gw.url}/nowhere/x`, { headers: { 'x-gateway-key': TEAM_A_KEY } });
    assert.equal(response.status, 404);
    assert.equal(((await response.json()) as Record<string, unknown>).code, 'ROUTE_NOT_FOUND');
  });

  it("lets a route's own policy replace the top-level one", async () => {
    const response = await fetch(`${gw.url}/loopback/x`);
    assert.equal(response.status, 200);
  });

  it('passes a policy with both keys and networks only when both pass, with its own header', async () => {
    const response = await fetch(`${gw.url}/both/x`, { headers: { 'x-team-key': TEAM_B_KEY, 'x-gateway-key': TEAM_A_KEY } });
    assert.equal(response.status, 200);
    const seen = upstream.received.at(-1)!;
    assert.equal(seen.headers['x-team-key'], undefined);
  });

  it("strips every configured access header, not only the route's own: the gateway-wide one on a route with its own policy, and other routes'", async () => {
    const headers = { 'x-team-key': TEAM_B_KEY, 'x-gateway-key': TEAM_A_KEY };
    for (const path of ['/both/x', '/loopback/x', '/keyed/x']) {
      const response = await fetch(`${gw.url}${path}`, { headers });
      assert.equal(response.status, 200, path);
      const seen = upstream.received.at(-1)!;
      assert.equal(seen.url, path);
      assert.equal(seen.headers['x-team-key'], undefined, `x-team-key reached the upstream of ${path}`);
      assert.equal(seen.headers['x-gateway-key'], undefined, `x-gateway-key reached the upstream of ${path}`);
      assert.ok(!seen.rawHeaders.some((h) => h.includes(TEAM_A_KEY) || h.includes(TEAM_B_KEY)));
    }
  });

  it('never logs or echoes a key', async () => {
    const response = await fetch(`${gw.url}/keyed/x`, { headers: { 'x-gateway-key': 'wrong-but-secret-looking-key' } });
    const body = await response.text();
    assert.ok(!body.includes('wrong-but-secret-looking-key'));
    for (const key of [TEAM_A_KEY, TEAM_B_KEY, 'wrong-but-secret-looking-key']) assert.ok(!gw.logText().includes(key));
  });
});

describe('access policy warning', () => {
  /** The warnings logged when a gateway with one credentialed route and no policy starts on `host`. */
  async function startupWarnings(host: string): Promise<Record<string, unknown>[]> {
    const gw = await startGateway(
      `
listen: { host: ${host} }
secrets: { s: { env: TG_S } }
connections:
  c: { clientId: x, tokenUrl: "http://127.0.0.1:1/token", clientSecret: { secret: s } }
routes:
  - { name: r, match: { pathPrefix: /r }, upstream: "http://127.0.0.1:1", auth: { connection: c } }
`,
      { env: { TG_S: 'secret' } },
    );
    await gw.stop();
    return gw.logs.filter((l) => l.level === 40);
  }

  it('warns at start-up when a non-loopback listener has routes with credentials and no access policy', async () => {
    assert.ok((await startupWarnings('0.0.0.0')).some((l) => l.event === 'no_access_policy'));
  });

  it('does not warn when the listener is loopback only', async () => {
    assert.ok(!(await startupWarnings('127.0.0.1')).some((l) => l.event === 'no_access_policy'));
  });
});
