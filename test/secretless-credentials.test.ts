/**
 * Credentials that rotate without a reload, against oidc-provider: a federated client assertion
 * file (a JWT another issuer made) replaced under traffic, an expired one that is never sent, and
 * `clientSecret.previous` used while the server still has the old secret, then retired once it
 * accepts the new one.
 */
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { acceptReusedAssertions } from './support/secretless.js';
import { json, startEchoUpstream, startTokenEndpoint, type TestServer } from './support/servers.js';
import { waitFor } from './support/wait.js';

const OLD_SECRET = 'old-secret-0123456789abcdef';
const NEW_SECRET = 'new-secret-fedcba9876543210';

/** A test issuer (a Kubernetes API server, say) whose key the authorization server trusts for this client. */
async function testIssuer() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-issuer-1', alg: 'ES256', use: 'sig' };
  return {
    jwk,
    mint: (jti: string, audience: string, expiresInS: number) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ jti })
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'JWT' })
        .setIssuer('federated')
        .setSubject('federated')
        .setAudience(audience)
        .setIssuedAt(now)
        .setExpirationTime(now + expiresInS)
        .sign(privateKey);
    },
  };
}

describe('a federated client assertion file', () => {
  let oidc: OidcServer;
  let upstream: TestServer;
  let gw: TestGateway;
  let jtis: string[];
  let issuer: Awaited<ReturnType<typeof testIssuer>>;
  const assertions: string[] = [];

  before(async () => {
    issuer = await testIssuer();
    oidc = await startOidcProvider(
      [{ client_id: 'federated', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [issuer.jwk] } }],
      { ttlSeconds: 3 },
    );
    jtis = acceptReusedAssertions(oidc);
    upstream = await startEchoUpstream();
    assertions.push(await issuer.mint('first', oidc.tokenUrl, 600), await issuer.mint('stale', oidc.tokenUrl, -60));
    gw = await startGateway(
      `
listen: { host: 127.0.0.1, port: 0 }
logging: { accessLog: off }
connections:
  federated:
    clientId: federated
    tokenUrl: ${oidc.tokenUrl}
    clientAssertion: { file: partner.jwt }
  expired:
    clientId: federated
    tokenUrl: ${oidc.tokenUrl}
    clientAssertion: { file: expired.jwt }
routes:
  - { name: federated, match: { pathPrefix: /federated }, upstream: "${upstream.url}", auth: { connection: federated } }
  - { name: expired, match: { pathPrefix: /expired }, upstream: "${upstream.url}", auth: { connection: expired } }
`,
      { files: { 'partner.jwt': `${assertions[0]}\n`, 'expired.jwt': assertions[1]! } },
    );
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
    await oidc?.close();
  });

  it('is read again when replaced under traffic: the next token request carries the new assertion, no caller error', async () => {
    const statuses: number[] = [];
    let stop = false;
    const caller = async () => {
      while (!stop) {
        const response = await fetch(`${gw.url}/federated/orders`);
        await response.arrayBuffer();
        statuses.push(response.status);
      }
    };
    const callers = [caller(), caller()];
    try {
      await waitFor(() => jtis.includes('first'), 'a token request with the first assertion');
      // As the kubelet does it: the new token written aside, then swapped in with one rename.
      const replacement = await issuer.mint('second', oidc.tokenUrl, 600);
      assertions.push(replacement);
      writeFileSync(join(gw.dir, 'partner.jwt.tmp'), replacement);
      renameSync(join(gw.dir, 'partner.jwt.tmp'), join(gw.dir, 'partner.jwt'));
      await waitFor(() => jtis.includes('second'), 'a token request with the replacement');
    } finally {
      stop = true;
      await Promise.all(callers);
    }
    assert.ok(statuses.length > 0);
    assert.deepEqual(
      statuses.filter((status) => status !== 200),
      [],
    );
    assert.ok(!jtis.slice(jtis.indexOf('second')).includes('first'), 'the old assertion is not sent after the replacement');
    const connections = (await (await fetch(`${gw.admin}/connections`)).json()) as {
      connections: Array<{ connection: string; clientAuth: string }>;
    };
    assert.equal(connections.connections.find((c) => c.connection === 'federated')?.clientAuth, 'client_assertion');
  });

  it('never sends an expired assertion: TOKEN_ENDPOINT_UNAVAILABLE with a detail naming the file', async () => {
    const sent = oidc.tokenRequests;
    const response = await fetch(`${gw.url}/expired/orders`);
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    const problem = (await response.json()) as { code: string; detail: string };
    assert.equal(problem.code, 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.match(problem.detail, /the client assertion in expired\.jwt expired at .* nothing was sent/);
    assert.equal(oidc.tokenRequests, sent, 'nothing reached the token endpoint');
  });

  it('keeps every assertion out of logs, answers and /usage', async () => {
    const usage = await (await fetch(`${gw.admin}/usage`)).text();
    const connections = await (await fetch(`${gw.admin}/connections`)).text();
    for (const assertion of assertions) {
      assert.ok(!gw.logText().includes(assertion), 'not in the logs');
      assert.ok(!usage.includes(assertion) && !connections.includes(assertion), 'not in /usage or /connections');
    }
  });
});

describe('a token endpoint that quotes the client assertion in its error', () => {
  it('never lets the assertion reach the caller, the logs or /usage', async () => {
    const issuer = await testIssuer();
    const endpoint = await startTokenEndpoint((_req, res, body) => {
      const sent = new URLSearchParams(body.toString('utf8')).get('client_assertion') ?? '';
      json(res, 400, { error: 'invalid_client', error_description: `assertion ${sent} is not trusted` });
    });
    const upstream = await startEchoUpstream();
    const assertion = await issuer.mint('quoted', endpoint.url, 600);
    const gw = await startGateway(
      `
listen: { host: 127.0.0.1, port: 0 }
connections:
  federated: { clientId: federated, tokenUrl: "${endpoint.url}/token", clientAssertion: { file: token.jwt } }
routes:
  - { name: federated, match: { pathPrefix: /f }, upstream: "${upstream.url}", auth: { connection: federated } }
`,
      { files: { 'token.jwt': assertion } },
    );
    try {
      const response = await fetch(`${gw.url}/f/x`);
      const answer = await response.text();
      assert.equal(response.status, 502);
      assert.match(answer, /assertion \[redacted\] is not trusted/);
      const usage = await (await fetch(`${gw.admin}/usage`)).text();
      for (const text of [answer, usage, gw.logText()]) assert.ok(!text.includes(assertion));
    } finally {
      await gw.stop();
      await upstream.close();
      await endpoint.close();
    }
  });
});

describe('clientSecret.previous against oidc-provider', () => {
  let oidc: OidcServer;
  let upstream: TestServer;
  let gw: TestGateway;

  /** The client as the server knows it, kept in its adapter: changing the secret there is the server side of a rotation. */
  const register = (secret: string) =>
    (oidc.provider.Client as unknown as { adapter: { upsert(id: string, payload: object): Promise<void> } }).adapter.upsert('rotating', {
      client_id: 'rotating',
      client_secret: secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'orders.read orders.write',
    });

  const secretInUse = async (): Promise<string> => {
    const body = (await (await fetch(`${gw.admin}/connections`)).json()) as {
      connections: Array<{ connection: string; secretInUse: string }>;
    };
    return body.connections.find((c) => c.connection === 'rotating')!.secretInUse;
  };
  const fallbacks = async (): Promise<number> => {
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    return Number(/^tokengate_secret_fallbacks_total\{connection="rotating"\} (\d+)/m.exec(metrics)?.[1]);
  };

  before(async () => {
    oidc = await startOidcProvider([]);
    await register(OLD_SECRET);
    upstream = await startEchoUpstream();
    gw = await startGateway(
      `
listen: { host: 127.0.0.1, port: 0 }
logging: { accessLog: off }
secrets:
  new: { value: ${NEW_SECRET} }
  old: { value: ${OLD_SECRET} }
connections:
  rotating:
    clientId: rotating
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: new, previous: old }
routes:
  - { name: read, match: { pathPrefix: /read }, upstream: "${upstream.url}", auth: { connection: rotating, params: { scope: orders.read } } }
  - { name: write, match: { pathPrefix: /write }, upstream: "${upstream.url}", auth: { connection: rotating, params: { scope: orders.write } } }
`,
    );
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
    await oidc?.close();
  });

  it('uses the previous secret once the current one is refused, and counts it', async () => {
    assert.equal(await secretInUse(), 'current');
    assert.equal(await fallbacks(), 0);
    const sent = oidc.tokenRequests;
    const response = await fetch(`${gw.url}/read/orders`);
    assert.equal(response.status, 200);
    assert.equal(oidc.tokenRequests - sent, 2, 'the refused request and its retry with the previous secret');
    assert.equal(await secretInUse(), 'previous');
    assert.equal(await fallbacks(), 1);
    assert.ok(gw.logs.some((line) => line.event === 'secret_fallback' && line.connection === 'rotating'));
  });

  it('retires the previous secret as soon as the server accepts the new one', async () => {
    await register(NEW_SECRET);
    const sent = oidc.tokenRequests;
    const response = await fetch(`${gw.url}/write/orders`);
    assert.equal(response.status, 200);
    assert.equal(oidc.tokenRequests - sent, 1, 'the current secret first, accepted');
    assert.equal(await secretInUse(), 'current');
    assert.equal(await fallbacks(), 1);
    for (const secret of [OLD_SECRET, NEW_SECRET]) assert.ok(!gw.logText().includes(secret));
  });
});

describe('clientAssertion and clientSecret.previous config checks', () => {
  const problems = async (block: string): Promise<string[]> => {
    try {
      await buildConfigTextOnly(
        `
secrets:
  s: { value: a-secret }
  short: { value: short }
  long: { value: a-client-secret-long-enough-for-hs256-0123 }
connections:
  c:
    clientId: x
    tokenUrl: http://127.0.0.1:1/token
${block}
`,
        'gateway.yaml',
      );
    } catch (error) {
      if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
      throw error;
    }
    return [];
  };

  it('refuses clientAssertion next to another method, at its key path', async () => {
    const found = await problems('    clientAssertion: { file: token.jwt }\n    clientSecret: { secret: s }');
    assert.ok(
      found.some((p) => p.startsWith('connections.c.clientAssertion: cannot be combined with clientSecret')),
      found.join('\n'),
    );
  });

  it('refuses a previous secret the method cannot use, at clientSecret.previous', async () => {
    const found = await problems('    clientSecret: { secret: long, previous: short, method: client_secret_jwt }');
    assert.ok(
      found.some((p) => p.startsWith('connections.c.clientSecret.previous: HS256 needs a client secret of at least 32 bytes')),
      found.join('\n'),
    );
    const unknown = await problems('    clientSecret: { secret: s, previous: nope }');
    assert.ok(
      unknown.some((p) => p.startsWith('connections.c.clientSecret.previous: unknown secret')),
      unknown.join('\n'),
    );
  });
});
