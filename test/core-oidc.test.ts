/** The walking skeleton end to end against a real OpenID provider (oidc-provider). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';
import { startGateway, type TestGateway } from './support/gateway.js';

const BASIC_SECRET = 'basic secret: with+form&chars';
const POST_SECRET = 'post-secret-0123456789';

describe('client credentials against oidc-provider', () => {
  let oidc: OidcServer;
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    oidc = await startOidcProvider([
      { client_id: 'basic:client', client_secret: BASIC_SECRET, token_endpoint_auth_method: 'client_secret_basic' },
      { client_id: 'post-client', client_secret: POST_SECRET, token_endpoint_auth_method: 'client_secret_post' },
    ]);
    upstream = await startEchoUpstream();
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  basic: { env: TG_TEST_BASIC }
  post: { env: TG_TEST_POST }
connections:
  basic-conn:
    clientId: "basic:client"
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: basic }
    params: { scope: orders.read orders.write }
  post-conn:
    clientId: post-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: post, method: client_secret_post }
routes:
  - name: read-only
    match: { pathPrefix: /ro }
    upstream: ${upstream.url}/api
    stripPrefix: true
    auth: { connection: basic-conn, params: { scope: orders.read } }
  - name: basic
    match: { pathPrefix: /basic }
    upstream: ${upstream.url}
    stripPrefix: true
    auth: { connection: basic-conn }
  - name: post
    match: { pathPrefix: /post }
    upstream: ${upstream.url}
    auth: { connection: post-conn }
`,
      { env: { ...process.env, TG_TEST_BASIC: BASIC_SECRET, TG_TEST_POST: POST_SECRET } },
    );
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await oidc.close();
  });

  it('injects a token the server issued to the client_secret_basic client (form-encoded id and secret)', async () => {
    const response = await fetch(`${gw.url}/basic/orders/1?x=%20y`, { headers: { authorization: 'Bearer caller-token' } });
    assert.equal(response.status, 200);
    const seen = upstream.received.at(-1)!;
    assert.equal(seen.url, '/orders/1?x=%20y');
    const token = seen.headers.authorization!.replace(/^Bearer /, '');
    assert.notEqual(token, 'caller-token');
    const introspection = await oidc.introspect(token);
    assert.equal(introspection.active, true);
    assert.equal(introspection.client_id, 'basic:client');
    assert.equal(introspection.scope, 'orders.read orders.write');
  });

  it('authenticates with client_secret_post', async () => {
    const response = await fetch(`${gw.url}/post/x`);
    assert.equal(response.status, 200);
    const token = upstream.received.at(-1)!.headers.authorization!.replace(/^Bearer /, '');
    const introspection = await oidc.introspect(token);
    assert.equal(introspection.client_id, 'post-client');
  });

  it('gives a route with overridden params its own token, with the overridden scope', async () => {
    await fetch(`${gw.url}/basic/a`);
    const full = upstream.received.at(-1)!.headers.authorization!;
    await fetch(`${gw.url}/ro/a`);
    const readOnly = upstream.received.at(-1)!.headers.authorization!;
    assert.notEqual(full, readOnly);
    assert.equal(upstream.received.at(-1)!.url, '/api/a');
    const introspection = await oidc.introspect(readOnly.replace(/^Bearer /, ''));
    assert.equal(introspection.scope, 'orders.read');
  });

  it('reuses the cached token instead of asking again', async () => {
    await fetch(`${gw.url}/basic/warm`);
    const before = oidc.tokenRequests;
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${gw.url}/basic/again`)).status, 200);
    assert.equal(oidc.tokenRequests, before);
  });
});
