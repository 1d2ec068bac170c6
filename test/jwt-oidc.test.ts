/**
 * privateKeyJwt and client_secret_jwt against a real OpenID provider (oidc-provider): every key
 * family and algorithm gets a token the server accepts, discovery by issuer works, and the
 * issue's "done when" connection gets tokens through the gateway.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildConfigOnly } from '../src/runtime/build.js';
import { type Config } from '../src/config/load.js';
import { ConnectionClient } from '../src/tokens/connection-client.js';
import { startGateway, writeConfig } from './support/gateway.js';
import { encodeKey, generateKey, type KeySpec } from './support/keys.js';
import { startOidcProvider, type OidcClient, type OidcServer } from './support/oidc.js';
import { startEchoUpstream } from './support/servers.js';

interface KeyCase {
  name: string;
  spec: KeySpec;
  encoding: 'pkcs1' | 'pkcs8' | 'sec1' | 'jwk';
  algorithm: string;
  /** Set `format:` explicitly instead of letting the loader detect it. */
  format?: 'pem' | 'jwk';
}

const KEY_CASES: KeyCase[] = [
  { name: 'rsa-pkcs1', spec: { type: 'rsa' }, encoding: 'pkcs1', algorithm: 'RS256' },
  { name: 'rsa-pkcs8', spec: { type: 'rsa' }, encoding: 'pkcs8', algorithm: 'RS384', format: 'pem' },
  { name: 'rsa-rs512', spec: { type: 'rsa', bits: 3072 }, encoding: 'pkcs8', algorithm: 'RS512' },
  { name: 'rsa-pss', spec: { type: 'rsa' }, encoding: 'pkcs8', algorithm: 'PS256' },
  { name: 'ec-p256-sec1', spec: { type: 'ec', curve: 'P-256' }, encoding: 'sec1', algorithm: 'ES256' },
  { name: 'ec-p384', spec: { type: 'ec', curve: 'P-384' }, encoding: 'pkcs8', algorithm: 'ES384' },
  { name: 'ec-p521', spec: { type: 'ec', curve: 'P-521' }, encoding: 'sec1', algorithm: 'ES512' },
  { name: 'ed25519', spec: { type: 'ed25519' }, encoding: 'pkcs8', algorithm: 'EdDSA' },
  { name: 'rsa-jwk', spec: { type: 'rsa' }, encoding: 'jwk', algorithm: 'PS384' },
  { name: 'ec-jwk', spec: { type: 'ec', curve: 'P-256' }, encoding: 'jwk', algorithm: 'ES256', format: 'jwk' },
];

const HS256_SECRET = 'hs256-client-secret-0123456789abcdef';
const HS512_SECRET = 'hs512-client-secret-0123456789abcdef-0123456789abcdef-0123456789';

describe('signed client assertions accepted by oidc-provider', () => {
  let oidc: OidcServer;
  let config: Config;
  const clients: ConnectionClient[] = [];
  const files: Record<string, string> = {};
  const oidcClients: OidcClient[] = [];

  before(async () => {
    for (const c of KEY_CASES) {
      const key = generateKey(c.spec);
      files[`${c.name}.key`] = encodeKey(key.privateKey, c.encoding);
      oidcClients.push({
        client_id: `client-${c.name}`,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: c.algorithm,
        jwks: { keys: [key.publicJwk(`kid-${c.name}`)] },
      });
    }
    const discovered = generateKey({ type: 'ec', curve: 'P-256' });
    files['discovered.key'] = encodeKey(discovered.privateKey, 'pkcs8');
    oidcClients.push(
      {
        client_id: 'client-discovered',
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [discovered.publicJwk('kid-discovered')] },
      },
      {
        client_id: 'client-hs256',
        client_secret: HS256_SECRET,
        token_endpoint_auth_method: 'client_secret_jwt',
        token_endpoint_auth_signing_alg: 'HS256',
      },
      {
        client_id: 'client-hs512',
        client_secret: HS512_SECRET,
        token_endpoint_auth_method: 'client_secret_jwt',
        token_endpoint_auth_signing_alg: 'HS512',
      },
    );
    oidc = await startOidcProvider(oidcClients);
    const keyConnections = KEY_CASES.map(
      (c) => `
  ${c.name}:
    clientId: client-${c.name}
    tokenUrl: ${oidc.tokenUrl}
    privateKeyJwt: { secret: ${c.name}, keyId: kid-${c.name}, algorithm: ${c.algorithm}${c.format === undefined ? '' : `, format: ${c.format}`} }`,
    ).join('');
    const { configFile } = writeConfig(
      `
secrets:
${KEY_CASES.map((c) => `  ${c.name}: { file: ${c.name}.key }`).join('\n')}
  discovered: { file: discovered.key }
  hs256: { value: ${HS256_SECRET} }
  hs512: { value: ${HS512_SECRET} }
connections:${keyConnections}
  discovered:
    clientId: client-discovered
    issuer: ${oidc.issuer}
    privateKeyJwt: { secret: discovered, keyId: kid-discovered, algorithm: ES256 }
  discovered-issuer-aud:
    clientId: client-discovered
    issuer: ${oidc.issuer}
    privateKeyJwt: { secret: discovered, keyId: kid-discovered, algorithm: ES256, audience: issuer }
  hs256:
    clientId: client-hs256
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: hs256, method: client_secret_jwt }
  hs512:
    clientId: client-hs512
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: hs512, method: client_secret_jwt, algorithm: HS512 }
`,
      files,
    );
    config = await buildConfigOnly(configFile);
  });

  after(async () => {
    for (const client of clients) client.close();
    await oidc.close();
  });

  /** A token for connection KEY straight from the server, and what introspection says about it. */
  async function tokenFor(key: string, client = new ConnectionClient(config.connections.get(key)!)): Promise<Record<string, unknown>> {
    if (!clients.includes(client)) clients.push(client);
    const response = await client.requestToken({ scope: 'orders.read' }, AbortSignal.timeout(5_000));
    return oidc.introspect(response.accessToken);
  }

  for (const c of KEY_CASES) {
    it(`gets a token with a ${c.name} key signing ${c.algorithm}`, async () => {
      const introspection = await tokenFor(c.name);
      assert.equal(introspection.active, true);
      assert.equal(introspection.client_id, `client-${c.name}`);
      assert.equal(introspection.scope, 'orders.read');
    });
  }

  it('gets a token with client_secret_jwt HS256 (the default algorithm)', async () => {
    const introspection = await tokenFor('hs256');
    assert.equal(introspection.active, true);
    assert.equal(introspection.client_id, 'client-hs256');
  });

  it('gets a token with client_secret_jwt HS512', async () => {
    const introspection = await tokenFor('hs512');
    assert.equal(introspection.active, true);
    assert.equal(introspection.client_id, 'client-hs512');
  });

  it('discovers the token endpoint from the issuer alone, once for many tokens', async () => {
    const client = new ConnectionClient(config.connections.get('discovered')!);
    const before = oidc.discoveryRequests;
    for (let i = 0; i < 3; i++) {
      const introspection = await tokenFor('discovered', client);
      assert.equal(introspection.active, true);
      assert.equal(introspection.client_id, 'client-discovered');
    }
    assert.equal(oidc.discoveryRequests - before, 1);
    assert.deepEqual(await client.metadata(), { issuer: oidc.issuer, tokenEndpoint: oidc.tokenUrl });
  });

  it('gets a token with the assertion audience set to the discovered issuer (audience: issuer)', async () => {
    const introspection = await tokenFor('discovered-issuer-aud');
    assert.equal(introspection.active, true);
    assert.equal(introspection.client_id, 'client-discovered');
  });
});

describe('done when: a connection with only the seed fields gets tokens through the gateway', () => {
  it('proxies a request whose upstream sees an active token issued to the private_key_jwt client', async () => {
    const key = generateKey({ type: 'rsa' });
    const oidc = await startOidcProvider([
      {
        client_id: 'seed-client',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'RS256',
        jwks: { keys: [key.publicJwk('seed-2026')] },
      },
    ]);
    const upstream = await startEchoUpstream();
    const gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  seed-key: { file: seed.pem }
connections:
  seed-api:
    displayName: Seed API
    clientId: seed-client
    tokenUrl: ${oidc.tokenUrl}
    privateKeyJwt: { secret: seed-key, keyId: seed-2026, format: pem, algorithm: RS256 }
    params: { scope: orders.write }
routes:
  - name: seed
    match: { pathPrefix: /seed }
    upstream: ${upstream.url}
    stripPrefix: true
    auth: { connection: seed-api }
`,
      { files: { 'seed.pem': encodeKey(key.privateKey, 'pkcs8') } },
    );
    try {
      const response = await fetch(`${gw.url}/seed/orders`, { method: 'POST', body: 'x' });
      assert.equal(response.status, 200);
      const seen = upstream.received.at(-1)!;
      assert.equal(seen.url, '/orders');
      const token = seen.headers.authorization!.replace(/^Bearer /, '');
      const introspection = await oidc.introspect(token);
      assert.equal(introspection.active, true);
      assert.equal(introspection.client_id, 'seed-client');
      assert.equal(introspection.scope, 'orders.write');
      // Neither the token, nor a client assertion (a JWS), nor the key reaches the logs.
      const logs = gw.logText();
      assert.equal(logs.includes(token), false);
      assert.doesNotMatch(logs, /eyJ[\w-]{10,}\.eyJ/);
      assert.equal(logs.includes(encodeKey(key.privateKey, 'pkcs8').split('\n')[1]!), false);
    } finally {
      await gw.stop();
      await upstream.close();
      await oidc.close();
    }
  });
});
