/**
 * DPoP (RFC 9449) end to end: oidc-provider issues client-credentials tokens bound to the gateway's
 * key (cnf.jkt), and a resource server that accepts nothing but DPoP-bound tokens checks every proof.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK } from 'jose';
import { accessTokenHash } from '../src/tokens/dpop/proof.js';
import { startDpopResourceServer, type DpopResourceServer } from './support/dpop-resource-server.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { encodeKey, generateKey } from './support/keys.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';

const SECRET = 'dpop-client-secret-0123456789abcdef';
const CLIENT = {
  client_id: 'dpop-client',
  client_secret: SECRET,
  token_endpoint_auth_method: 'client_secret_basic',
  dpop_bound_access_tokens: true,
};

/** oidc-provider's DPoP feature; with `requireNonce` every proof must carry its current nonce. */
function dpopFeature(requireNonce: boolean) {
  return { dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => requireNonce } };
}

function gatewayYaml(tokenUrl: string, upstream: string, dpop = '{}', extraSecrets = ''): string {
  return `
listen: { host: 127.0.0.1 }
secrets:
  client: { env: TG_DPOP_SECRET }
${extraSecrets}
connections:
  bound:
    clientId: dpop-client
    tokenUrl: ${tokenUrl}
    clientSecret: { secret: client }
    params: { scope: orders.read }
    dpop: ${dpop}
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: ${upstream}/v1
    stripPrefix: true
    auth: { connection: bound }
  - name: stream
    match: { pathPrefix: /stream }
    upstream: ${upstream}/v1
    stripPrefix: true
    replayBodyLimit: 16
    auth: { connection: bound }
`;
}

const env = { ...process.env, TG_DPOP_SECRET: SECRET };

async function metric(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${gw.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? Number.NaN : Number(line.split(' ').at(-1));
}

async function connectionInfo(gw: TestGateway): Promise<Record<string, unknown>> {
  const body = (await (await fetch(`${gw.admin}/connections`)).json()) as { connections: Array<Record<string, unknown>> };
  return body.connections.find((c) => c.connection === 'bound')!;
}

/** oidc-provider with DPoP on and a resource server that verifies every proof, nonces required by both or by neither. */
async function startPeers(nonces: boolean): Promise<{ oidc: OidcServer; rs: DpopResourceServer }> {
  const oidc = await startOidcProvider([CLIENT], { features: dpopFeature(nonces) });
  const rs = await startDpopResourceServer({ introspect: (token) => oidc.introspect(token), requireNonce: nonces });
  return { oidc, rs };
}

async function stopAll(gw: TestGateway, rs: DpopResourceServer, oidc: OidcServer): Promise<void> {
  await gw.stop();
  await rs.close();
  await oidc.close();
}

describe('DPoP against oidc-provider, no nonces', () => {
  let oidc: OidcServer;
  let rs: DpopResourceServer;
  let gw: TestGateway;

  before(async () => {
    ({ oidc, rs } = await startPeers(false));
    gw = await startGateway(gatewayYaml(oidc.tokenUrl, rs.url), { env });
  });
  after(() => stopAll(gw, rs, oidc));

  it('reaches a DPoP-only upstream with a token bound to the generated key (cnf.jkt = the thumbprint in /connections)', async () => {
    const response = await fetch(`${gw.url}/api/orders/7?full=yes`);
    assert.equal(response.status, 200, JSON.stringify(rs.checks.at(-1)));
    const check = rs.checks.at(-1)!;
    assert.equal(check.ok, true);
    assert.equal(check.alg, 'ES256');
    const introspection = await oidc.introspect(check.token!);
    const info = await connectionInfo(gw);
    assert.deepEqual(info.dpop, { algorithm: 'ES256', thumbprint: (introspection.cnf as { jkt: string }).jkt });
    assert.equal(introspection.token_type, 'DPoP');
  });

  it('signs a fresh proof per request: repeated requests with the cached token all pass the jti replay check', async () => {
    const before = oidc.tokenRequests;
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => fetch(`${gw.url}/api/orders/${i}`, { method: i % 2 ? 'DELETE' : 'GET' })),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200],
    );
    assert.equal(oidc.tokenRequests, before, 'the cached token serves');
    assert.ok(rs.checks.every((c) => c.ok));
  });

  it('a token replayed with another key is refused by the resource server', async () => {
    const stolen = rs.checks.find((c) => c.ok)!.token!;
    const thief = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const proof = await new SignJWT({ htm: 'GET', htu: `${rs.url}/v1/orders/1`, ath: accessTokenHash(stolen), jti: randomUUID() })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(thief.publicKey) })
      .setIssuedAt()
      .sign(thief.privateKey);
    const response = await fetch(`${rs.url}/v1/orders/1`, { headers: { authorization: `DPoP ${stolen}`, dpop: proof } });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate')!, /error="invalid_token"/);
    assert.match(rs.checks.at(-1)!.reason!, /cnf\.jkt/);
    // ...and as a Bearer token it is no token at all.
    const bearer = await fetch(`${rs.url}/v1/orders/1`, { headers: { authorization: `Bearer ${stolen}` } });
    assert.equal(bearer.status, 401);
  });

  it('error="invalid_token" from the upstream drops the token, fetches a new bound one and replays once', async () => {
    const current = rs.checks.findLast((c) => c.ok)!.token!;
    rs.revoke(current);
    const before = oidc.tokenRequests;
    const response = await fetch(`${gw.url}/api/orders/9`, {
      method: 'POST',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(response.status, 200);
    assert.equal(oidc.tokenRequests, before + 1);
    const last = rs.checks.at(-1)!;
    assert.equal(last.ok, true);
    assert.notEqual(last.token, current);
  });

  it('a newer DPoP-Nonce on a successful answer is used from the next proof on', async () => {
    rs.announceNonce = true;
    const nonce = rs.rotateNonce();
    assert.equal((await fetch(`${gw.url}/api/a`)).status, 200);
    assert.equal((await fetch(`${gw.url}/api/b`)).status, 200);
    assert.equal(rs.checks.at(-1)!.nonce, nonce);
    const newer = rs.rotateNonce();
    assert.equal((await fetch(`${gw.url}/api/c`)).status, 200);
    assert.equal(rs.checks.at(-1)!.nonce, nonce, 'the nonce it held when the request was sent');
    assert.equal((await fetch(`${gw.url}/api/d`)).status, 200);
    assert.equal(rs.checks.at(-1)!.nonce, newer);
    rs.announceNonce = false;
  });

  it('keeps every proof, token and the key out of the logs, /usage, /connections and /metrics', async () => {
    const secrets = rs.checks.flatMap((c) => [c.proof, c.token]).filter((v): v is string => v !== undefined);
    assert.ok(secrets.length > 10);
    const pages = await Promise.all(['/usage', '/connections', '/metrics'].map(async (path) => (await fetch(`${gw.admin}${path}`)).text()));
    const haystack = [gw.logText(), ...pages].join('\n');
    for (const secret of secrets) assert.ok(!haystack.includes(secret), 'a proof or token leaked');
    // Every proof's signature input starts with the encoded header; the signature part is per proof.
    for (const secret of secrets) assert.ok(!haystack.includes(secret.split('.').at(-1)!));
    assert.doesNotMatch(haystack, /"d"\s*:/);
  });
});

describe('DPoP with nonces required by the authorization server and the upstream', () => {
  let oidc: OidcServer;
  let rs: DpopResourceServer;
  let gw: TestGateway;

  before(async () => {
    ({ oidc, rs } = await startPeers(true));
    gw = await startGateway(gatewayYaml(oidc.tokenUrl, rs.url), { env });
  });
  after(() => stopAll(gw, rs, oidc));

  it('answers use_dpop_nonce from both with one retry each, then sends the nonces from the start', async () => {
    const response = await fetch(`${gw.url}/api/orders/1`);
    assert.equal(response.status, 200, JSON.stringify(rs.checks));
    assert.equal(oidc.tokenRequests, 2, 'one use_dpop_nonce, one retry with the nonce');
    assert.deepEqual(
      rs.checks.map((c) => [c.ok, c.reason]),
      [
        [false, 'nonce required'],
        [true, undefined],
      ],
    );
    assert.equal(await metric(gw, 'tokengate_dpop_nonce_retries_total', 'connection="bound",server="token_endpoint"'), 1);
    assert.equal(await metric(gw, 'tokengate_dpop_nonce_retries_total', 'connection="bound",server="upstream"'), 1);

    assert.equal((await fetch(`${gw.url}/api/orders/2`, { method: 'PUT', body: 'x' })).status, 200);
    assert.equal(rs.checks.at(-1)!.ok, true);
    assert.equal(rs.checks.length, 3, 'no 401 on the second request: the nonce was remembered');
    assert.equal(await metric(gw, 'tokengate_dpop_nonce_retries_total', 'connection="bound",server="upstream"'), 1);
  });

  it('a rotated upstream nonce costs one replay', async () => {
    const nonce = rs.rotateNonce();
    const before = rs.checks.length;
    assert.equal((await fetch(`${gw.url}/api/orders/3`)).status, 200);
    assert.equal(rs.checks.length, before + 2);
    assert.equal(rs.checks.at(-1)!.nonce, nonce);
    assert.equal(await metric(gw, 'tokengate_dpop_nonce_retries_total', 'connection="bound",server="upstream"'), 2);
  });

  it('a request that cannot be replayed (streamed body) gets the 401, and the nonce serves the next request', async () => {
    const nonce = rs.rotateNonce();
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('a streamed body longer than the replay limit'));
        controller.close();
      },
    });
    const streamed = await fetch(`${gw.url}/stream/upload`, { method: 'POST', body, duplex: 'half' });
    assert.equal(streamed.status, 401);
    assert.match(streamed.headers.get('www-authenticate')!, /use_dpop_nonce/);
    const next = await fetch(`${gw.url}/stream/upload`, { method: 'POST', body: 'short' });
    assert.equal(next.status, 200);
    assert.equal(rs.checks.at(-1)!.nonce, nonce);
    assert.equal(await metric(gw, 'tokengate_dpop_nonce_retries_total', 'connection="bound",server="upstream"'), 2);
  });

  it('the token command (and the admin test) fetches a DPoP token through the nonce demand', async () => {
    const answer = await fetch(`${gw.admin}/connections/bound/test`, { method: 'POST' });
    const summary = (await answer.json()) as Record<string, unknown>;
    assert.equal(answer.status, 200, JSON.stringify(summary));
    assert.equal(summary.tokenType, 'DPoP');
  });

  it('counts every request that reached the token endpoint, each use_dpop_nonce answer included, in tokengate_token_requests_total and /usage', async () => {
    // Regression: the answer that demanded a nonce and its retry were counted as one request.
    const challenges = await metric(gw, 'tokengate_dpop_nonce_retries_total', 'connection="bound",server="token_endpoint"');
    assert.ok(challenges >= 1);
    const successes = await metric(gw, 'tokengate_token_requests_total', 'connection="bound",outcome="success"');
    const failures = await metric(gw, 'tokengate_token_requests_total', 'connection="bound",outcome="failure"');
    assert.equal(successes + failures, oidc.tokenRequests);
    assert.equal(failures, challenges, 'each answer that demanded a nonce is a request that got no token');
    const usage = (await (await fetch(`${gw.admin}/usage`)).json()) as { connections: Array<Record<string, unknown>> };
    const bound = usage.connections.find((c) => c.connection === 'bound')!;
    assert.equal(bound.tokenRequests, oidc.tokenRequests);
    assert.equal(bound.successes, successes);
    assert.equal(bound.failures, 0, 'a nonce demand is the protocol, not a failure to report');
    const histogram = await metric(gw, 'tokengate_token_request_duration_seconds_count', 'connection="bound"');
    assert.equal(histogram, oidc.tokenRequests);
  });
});

describe('DPoP in every algorithm family', () => {
  const families = [
    { name: 'es256', algorithm: 'ES256', key: () => encodeKey(generateKey({ type: 'ec', curve: 'P-256' }).privateKey, 'sec1') },
    { name: 'es384', algorithm: 'ES384', key: () => encodeKey(generateKey({ type: 'ec', curve: 'P-384' }).privateKey, 'jwk') },
    { name: 'eddsa', algorithm: 'EdDSA', key: () => encodeKey(generateKey({ type: 'ed25519' }).privateKey, 'pkcs8') },
    { name: 'ps256', algorithm: 'PS256', key: () => encodeKey(generateKey({ type: 'rsa' }).privateKey, 'pkcs1') },
    { name: 'rs256', algorithm: 'RS256', key: () => encodeKey(generateKey({ type: 'rsa' }).privateKey, 'jwk') },
  ];
  let oidc: OidcServer;
  let rs: DpopResourceServer;
  let gw: TestGateway;

  before(async () => {
    ({ oidc, rs } = await startPeers(true));
    const files: Record<string, string> = {};
    const secrets = families.map((f) => `  ${f.name}-key: { file: ${f.name}.key }`).join('\n');
    const connections = families
      .map(
        (f) => `  ${f.name}:
    clientId: dpop-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: client }
    dpop: { key: ${f.name}-key${f.algorithm === 'PS256' ? '' : `, algorithm: ${f.algorithm}`} }`,
      )
      .join('\n');
    const routes = families
      .map(
        (f) => `  - name: ${f.name}
    match: { pathPrefix: /${f.name} }
    upstream: ${rs.url}
    auth: { connection: ${f.name} }`,
      )
      .join('\n');
    for (const f of families) files[`${f.name}.key`] = f.key();
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  client: { env: TG_DPOP_SECRET }
${secrets}
connections:
${connections}
routes:
${routes}
`,
      { env, files },
    );
  });
  after(() => stopAll(gw, rs, oidc));

  for (const family of families) {
    it(`${family.algorithm}: a key from a secret binds the token and signs proofs the resource server accepts`, async () => {
      const response = await fetch(`${gw.url}/${family.name}/x`);
      assert.equal(response.status, 200, JSON.stringify(rs.checks.at(-1)));
      const check = rs.checks.at(-1)!;
      assert.equal(check.ok, true);
      assert.equal(check.alg, family.algorithm);
    });
  }
});
