/**
 * Issuer discovery against small fake metadata servers, for what oidc-provider will not do: a
 * plain OAuth server (RFC 8414 only), a lying issuer, a token endpoint that moves, an https issuer
 * pointing at plain http.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { buildConfigOnly } from '../src/runtime/build.js';
import { type Connection } from '../src/config/load.js';
import { TokenError } from '../src/errors/gateway.js';
import { ConnectionClient } from '../src/tokens/connection-client.js';
import { TokenProvider } from '../src/tokens/provider.js';
import { tokenKey, type TokenObserver } from '../src/tokens/types.js';
import { startGateway, writeConfig } from './support/gateway.js';
import { encodeKey, generateKey, selfSignedCertificate } from './support/keys.js';
import { requireProgram } from './support/programs.js';
import { json, startServer, tokenIssuer, type Handler, type TestServer } from './support/servers.js';

const NO_OBSERVER: TokenObserver = { tokenRequest: () => undefined, tokenFailure: () => undefined };
const SECRET = 'discovery-client-secret';

/** A connection that discovers `issuer`, authenticating with client_secret_post. */
async function connectionFor(issuer: string): Promise<Connection> {
  const { configFile } = writeConfig(`
secrets: { s: { value: ${SECRET} } }
connections:
  disco:
    clientId: disco-client
    issuer: ${issuer}
    clientSecret: { secret: s, method: client_secret_post }
    retry: { maxAttempts: 3 }
`);
  return (await buildConfigOnly(configFile)).connections.get('disco')!;
}

/** A gateway config whose connection "disco" discovers `issuer`; `routes` follows `routes:`. */
const discoveringGateway = (issuer: string, routes: string) => `
listen: { host: 127.0.0.1 }
secrets: { s: { value: ${SECRET} } }
connections:
  disco:
    clientId: disco-client
    issuer: ${issuer}
    clientSecret: { secret: s }
routes: ${routes}
`;

/** A port nothing listens on (a server was there a moment ago). */
async function deadUrl(): Promise<string> {
  const server = await startServer(() => undefined);
  await server.close();
  return server.url;
}

const servers: TestServer[] = [];
const clients: ConnectionClient[] = [];

async function metadataServer(handler: Handler): Promise<TestServer> {
  const server = await startServer(handler);
  servers.push(server);
  return server;
}

function client(connection: Connection): ConnectionClient {
  const c = new ConnectionClient(connection);
  clients.push(c);
  return c;
}

const discoveries = (server: TestServer) => server.received.filter((r) => r.url.startsWith('/.well-known/')).length;

after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

describe('issuer discovery', () => {
  it('falls back to RFC 8414 /.well-known/oauth-authorization-server (path after it) when there is no OIDC document', async () => {
    const issueToken = tokenIssuer();
    const as = await metadataServer((req, res, body, index) => {
      if (req.url === '/.well-known/oauth-authorization-server/tenant-a') {
        return json(res, 200, { issuer: `${as.url}/tenant-a`, token_endpoint: `${as.url}/tenant-a/oauth2/token` });
      }
      if (req.url === '/tenant-a/oauth2/token') return issueToken(req, res, body, index);
      json(res, 404, { error: 'not_found' });
    });
    const token = await client(await connectionFor(`${as.url}/tenant-a`)).requestToken({}, AbortSignal.timeout(5_000));
    assert.match(token.accessToken, /^tok-/);
    assert.deepEqual(
      as.received.map((r) => `${r.method} ${r.url}`),
      [
        'GET /tenant-a/.well-known/openid-configuration',
        'GET /.well-known/oauth-authorization-server/tenant-a',
        'POST /tenant-a/oauth2/token',
      ],
    );
    assert.equal(new URLSearchParams(as.received.at(-1)!.body.toString()).get('client_id'), 'disco-client');
  });

  it('refuses a metadata document whose issuer differs, naming both, and sends no credentials', async () => {
    const as = await metadataServer((req, res) =>
      json(res, 200, { issuer: 'https://impostor.example', token_endpoint: `${as.url}/token` }),
    );
    const error = await client(await connectionFor(as.url))
      .requestToken({}, AbortSignal.timeout(5_000))
      .then(
        () => assert.fail('expected a TokenError'),
        (e: unknown) => e as TokenError,
      );
    assert.ok(error instanceof TokenError);
    assert.equal(error.code, 'TOKEN_RESPONSE_INVALID');
    assert.equal(error.reason, 'invalid_response');
    assert.match(error.detail, /issuer mismatch/);
    assert.ok(error.detail.includes(`"${as.url}"`), error.detail);
    assert.ok(error.detail.includes('"https://impostor.example"'), error.detail);
    assert.equal(as.received.filter((r) => r.method === 'POST').length, 0);
  });

  it('shows the discovered token endpoint in /connections once discovery has run', async () => {
    const as = await metadataServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration')
        return json(res, 200, { issuer: as.url, token_endpoint: `${as.url}/oauth/token` });
      if (req.url === '/oauth/token') return json(res, 200, { access_token: 'discovered-token', token_type: 'Bearer', expires_in: 300 });
      json(res, 404, {});
    });
    const gw = await startGateway(discoveringGateway(as.url, '[]'));
    try {
      const endpoint = async () =>
        ((await (await fetch(`${gw.admin}/connections`)).json()) as { connections: Array<{ tokenEndpoint: string | null }> })
          .connections[0]!.tokenEndpoint;
      assert.equal(await endpoint(), null, 'nothing is discovered before a token is needed');
      assert.equal((await fetch(`${gw.admin}/connections/disco/test`, { method: 'POST' })).status, 200);
      assert.equal(await endpoint(), `${as.url}/oauth/token`);
    } finally {
      await gw.stop();
    }
  });

  it('tells the caller of the gateway about the issuer mismatch in problem+json', async () => {
    const as = await metadataServer((req, res) => json(res, 200, { issuer: `${as.url}/other`, token_endpoint: `${as.url}/token` }));
    const upstream = await metadataServer((_req, res) => json(res, 200, {}));
    const gw = await startGateway(
      discoveringGateway(as.url, `\n  - { name: r, match: { pathPrefix: /r }, upstream: "${upstream.url}", auth: { connection: disco } }`),
    );
    try {
      const response = await fetch(`${gw.url}/r`);
      assert.equal(response.status, 502);
      const problem = (await response.json()) as Record<string, unknown>;
      assert.equal(problem.code, 'TOKEN_RESPONSE_INVALID');
      assert.equal(problem.connection, 'disco');
      assert.match(
        String(problem.detail),
        /issuer mismatch: the connection's issuer is "http:\/\/127\.0\.0\.1:\d+" but the document says "http:\/\/127\.0\.0\.1:\d+\/other"/,
      );
      assert.equal(upstream.received.length, 0);
      assert.equal(gw.logText().includes(SECRET), false);
    } finally {
      await gw.stop();
    }
  });

  it('fetches the metadata once for many tokens, concurrent ones included', async () => {
    const issueToken = tokenIssuer();
    const as = await metadataServer((req, res, body, index) => {
      if (req.url === '/.well-known/openid-configuration') return json(res, 200, { issuer: as.url, token_endpoint: `${as.url}/token` });
      issueToken(req, res, body, index);
    });
    const c = client(await connectionFor(as.url));
    await Promise.all(Array.from({ length: 10 }, () => c.requestToken({}, AbortSignal.timeout(5_000))));
    for (let i = 0; i < 5; i++) await c.requestToken({}, AbortSignal.timeout(5_000));
    assert.equal(discoveries(as), 1);
    assert.equal(as.received.filter((r) => r.url === '/token').length, 15);
  });

  it('does not refetch the metadata after an OAuth error (the endpoint answered)', async () => {
    const as = await metadataServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') return json(res, 200, { issuer: as.url, token_endpoint: `${as.url}/token` });
      json(res, 401, { error: 'invalid_client' });
    });
    const c = client(await connectionFor(as.url));
    for (let i = 0; i < 2; i++)
      await assert.rejects(c.requestToken({}, AbortSignal.timeout(5_000)), { code: 'TOKEN_REJECTED', oauthError: 'invalid_client' });
    assert.equal(discoveries(as), 1);
  });

  it('refetches the metadata after a network error on the token endpoint, finding where it moved', async () => {
    const issueToken = tokenIssuer();
    let tokenEndpoint = `${await deadUrl()}/token`;
    const as = await metadataServer((req, res, body, index) => {
      if (req.url === '/.well-known/openid-configuration') return json(res, 200, { issuer: as.url, token_endpoint: tokenEndpoint });
      issueToken(req, res, body, index);
    });
    const c = client(await connectionFor(as.url));
    await assert.rejects(c.requestToken({}, AbortSignal.timeout(5_000)), { code: 'TOKEN_ENDPOINT_UNAVAILABLE', reason: 'network' });
    tokenEndpoint = `${as.url}/token`;
    const token = await c.requestToken({}, AbortSignal.timeout(5_000));
    assert.match(token.accessToken, /^tok-/);
    assert.equal(discoveries(as), 2);
  });

  it('lets one caller get a token when the endpoint moved: the retry rediscovers it', async () => {
    const issueToken = tokenIssuer();
    const dead = `${await deadUrl()}/token`;
    const as = await metadataServer((req, res, body, index) => {
      // The first document names the old (dead) endpoint, later ones the new one.
      if (req.url === '/.well-known/openid-configuration')
        return json(res, 200, { issuer: as.url, token_endpoint: discoveries(as) === 1 ? dead : `${as.url}/token` });
      issueToken(req, res, body, index);
    });
    const provider = new TokenProvider([await connectionFor(as.url)], NO_OBSERVER);
    try {
      const token = await provider.get(tokenKey('disco', {}));
      assert.match(token.accessToken, /^tok-/);
      assert.equal(discoveries(as), 2);
    } finally {
      provider.close();
    }
  });

  it('names both discovery URLs when neither has a document', async () => {
    const as = await metadataServer((_req, res) => json(res, 404, { error: 'not_found' }));
    await assert.rejects(client(await connectionFor(as.url)).requestToken({}, AbortSignal.timeout(5_000)), (error: TokenError) => {
      assert.equal(error.code, 'TOKEN_REJECTED');
      assert.match(
        error.detail,
        /\/\.well-known\/openid-configuration \(HTTP 404\) and \/\.well-known\/oauth-authorization-server \(HTTP 404\)/,
      );
      return true;
    });
  });

  it('refuses a document without a usable token_endpoint', async () => {
    const as = await metadataServer((req, res) => json(res, 200, { issuer: as.url, token_endpoint: '/token' }));
    await assert.rejects(client(await connectionFor(as.url)).requestToken({}, AbortSignal.timeout(5_000)), (error: TokenError) => {
      assert.equal(error.code, 'TOKEN_RESPONSE_INVALID');
      assert.match(error.detail, /no usable token_endpoint/);
      return true;
    });
  });

  it('refuses a plain-http token_endpoint under an https issuer and sends it nothing', requireProgram('openssl', 'openssl'), async () => {
    const key = generateKey({ type: 'ec', curve: 'P-256' });
    const plain = await metadataServer(tokenIssuer());
    const tls = https.createServer({ key: encodeKey(key.privateKey, 'pkcs8'), cert: selfSignedCertificate(key.privateKey) }, (_req, res) =>
      json(res, 200, { issuer, token_endpoint: `${plain.url}/token` }),
    );
    await new Promise<void>((done) => tls.listen(0, '127.0.0.1', done));
    const issuer = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
    // The test's own self-signed certificate; only this test talks TLS.
    const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      await assert.rejects(client(await connectionFor(issuer)).requestToken({}, AbortSignal.timeout(5_000)), (error: TokenError) => {
        assert.equal(error.code, 'TOKEN_RESPONSE_INVALID');
        assert.match(error.detail, /plain http: under an https: issuer/);
        return true;
      });
      assert.equal(plain.received.length, 0);
    } finally {
      if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
      tls.closeAllConnections();
      await new Promise<void>((done) => tls.close(() => done()));
    }
  });
});
