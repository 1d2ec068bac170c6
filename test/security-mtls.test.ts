/**
 * Mutual-TLS client authentication (RFC 8705) against oidc-provider with its mTLS feature, served
 * over HTTPS with certificates the test made, and a CA bundle per connection for the token endpoint.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';
import { requireProgram } from './support/programs.js';
import { testPki, type TestPki } from './support/tls.js';

/** The self-signed certificate's public key as a JWK with x5c: how the client registers it (RFC 8705 §2.2). */
function jwkOf(pem: string): Record<string, unknown> {
  const cert = new X509Certificate(pem);
  return { ...cert.publicKey.export({ format: 'jwk' }), x5c: [cert.raw.toString('base64')] };
}

interface ResourceServer {
  url: string;
  requests: number;
  close(): Promise<void>;
}

/**
 * An HTTPS resource server that demands a client certificate from the client CA and accepts a
 * token only when it is bound to that certificate (its x5t#S256, RFC 8705 §3.1).
 */
async function startResourceServer(oidc: OidcServer): Promise<ResourceServer> {
  const pki = testPki();
  const result = { url: '', requests: 0, close: async () => undefined };
  const server = https.createServer(
    { cert: pki.server.cert, key: pki.server.key, ca: pki.clientCa.cert, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      result.requests++;
      const peer = (req.socket as TLSSocket).getPeerX509Certificate()!;
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      void oidc.provider.ClientCredentials.find(token).then((issued) => {
        const bound = issued !== undefined && issued['x5t#S256'] === createHash('sha256').update(peer.raw).digest('base64url');
        res.writeHead(bound ? 200 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bound, subject: peer.subject }));
      });
    },
  );
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  result.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  result.close = () =>
    new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    });
  return result;
}

async function bearerOf(response: Response, upstream: TestServer): Promise<string> {
  assert.equal(response.status, 200, await response.clone().text());
  return upstream.received.at(-1)!.headers.authorization!.replace(/^Bearer /, '');
}

describe('mutual-TLS client authentication against oidc-provider', requireProgram('openssl', 'openssl'), () => {
  let pki: TestPki;
  let oidc: OidcServer;
  let alias: https.Server;
  let aliasRequests = 0;
  let upstream: TestServer;
  let resourceServer: ResourceServer;
  let gw: TestGateway;

  before(async () => {
    pki = testPki();
    const serverTls = { cert: pki.server.cert, key: pki.server.key, ca: pki.clientCa.cert, requestCert: true, rejectUnauthorized: false };
    // A second HTTPS listener for the same provider: the token endpoint alias for mTLS clients.
    alias = https.createServer(serverTls);
    await new Promise<void>((done) => alias.listen(0, '127.0.0.1', done));
    const aliasUrl = `https://127.0.0.1:${(alias.address() as AddressInfo).port}/token`;
    oidc = await startOidcProvider(
      [
        { client_id: 'mtls-client', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=tokengate-client' },
        {
          client_id: 'self-signed-client',
          token_endpoint_auth_method: 'self_signed_tls_client_auth',
          jwks: { keys: [jwkOf(pki.selfSigned.cert)] },
        },
        {
          client_id: 'bound-client',
          token_endpoint_auth_method: 'tls_client_auth',
          tls_client_auth_subject_dn: 'CN=tokengate-client',
          tls_client_certificate_bound_access_tokens: true,
        },
      ],
      {
        tls: { cert: pki.server.cert, key: pki.server.key, clientCa: pki.clientCa.cert },
        discovery: { mtls_endpoint_aliases: { token_endpoint: aliasUrl } },
      },
    );
    const callback = oidc.provider.callback();
    alias.on('request', (req, res) => {
      aliasRequests++;
      void callback(req, res);
    });
    upstream = await startEchoUpstream();
    resourceServer = await startResourceServer(oidc);
    const connection = (clientId: string, auth: string, extra = '') => `
    clientId: ${clientId}
    tokenUrl: ${oidc.tokenUrl}
    tls: { ca: as-ca }
    tlsClientAuth: ${auth}
    retry: { maxAttempts: 1 }${extra}`;
    const route = (name: string, connectionKey: string) => `
  - name: ${name}
    match: { pathPrefix: /${name} }
    upstream: ${upstream.url}
    auth: { connection: ${connectionKey} }`;
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  as-ca: { file: ca.pem }
  client-cert: { file: client.crt }
  client-key: { file: client.key }
  self-cert: { file: self.crt }
  self-key: { file: self.key }
connections:
  mtls: ${connection('mtls-client', '{ certificate: client-cert, key: client-key }')}
  self-signed: ${connection('self-signed-client', '{ method: self_signed_tls_client_auth, certificate: self-cert, key: self-key }')}
  wrong-cert: ${connection('mtls-client', '{ certificate: self-cert, key: self-key }')}
  untrusted:
    clientId: mtls-client
    tokenUrl: ${oidc.tokenUrl}
    tlsClientAuth: { certificate: client-cert, key: client-key }
    retry: { maxAttempts: 1 }
  bound: ${connection('bound-client', '{ certificate: client-cert, key: client-key }')}
  discovered:
    clientId: mtls-client
    issuer: ${oidc.issuer}
    tls: { ca: as-ca }
    tlsClientAuth: { certificate: client-cert, key: client-key }
routes:
  - name: bound
    match: { pathPrefix: /bound }
    upstream: ${resourceServer.url}
    tls: { ca: as-ca, certificate: client-cert, key: client-key }
    auth: { connection: bound }
  - name: bound-without-certificate
    match: { pathPrefix: /unbound }
    upstream: ${resourceServer.url}
    tls: { ca: as-ca }
    auth: { connection: bound }
  ${route('mtls', 'mtls').trimStart()} ${route('self-signed', 'self-signed')} ${route('wrong-cert', 'wrong-cert')} ${route('untrusted', 'untrusted')} ${route('discovered', 'discovered')}
`,
      {
        files: {
          'ca.pem': pki.ca.cert,
          'client.crt': pki.client.cert,
          'client.key': pki.client.key,
          'self.crt': pki.selfSigned.cert,
          'self.key': pki.selfSigned.key,
        },
      },
    );
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await resourceServer.close();
    await oidc.close();
    alias.closeAllConnections();
    await new Promise<void>((done) => alias.close(() => done()));
  });

  it('tls_client_auth: the server issues a token to the client its CA-signed certificate names', async () => {
    const token = await bearerOf(await fetch(`${gw.url}/mtls/x`), upstream);
    const issued = await oidc.provider.ClientCredentials.find(token);
    assert.equal(issued?.clientId, 'mtls-client');
  });

  it('self_signed_tls_client_auth: the server issues a token for the registered self-signed certificate', async () => {
    const token = await bearerOf(await fetch(`${gw.url}/self-signed/x`), upstream);
    const issued = await oidc.provider.ClientCredentials.find(token);
    assert.equal(issued?.clientId, 'self-signed-client');
  });

  it('a certificate the server does not accept for the client is TOKEN_REJECTED with invalid_client', async () => {
    const response = await fetch(`${gw.url}/wrong-cert/x`);
    assert.equal(response.status, 502);
    const problem = (await response.json()) as Record<string, unknown>;
    assert.equal(problem.code, 'TOKEN_REJECTED');
    assert.equal(problem.oauthError, 'invalid_client');
  });

  it('without the connection CA the token endpoint certificate is refused before any token request', async () => {
    const before = oidc.tokenRequests;
    const response = await fetch(`${gw.url}/untrusted/x`);
    assert.equal(response.status, 503);
    const problem = (await response.json()) as Record<string, unknown>;
    assert.equal(problem.code, 'TOKEN_ENDPOINT_UNAVAILABLE');
    // The operator learns why: the TLS verification error code is in the detail.
    assert.match(
      String(problem.detail),
      /\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/,
    );
    assert.equal(oidc.tokenRequests, before);
  });

  it('discovery over HTTPS with the connection CA, using the mtls_endpoint_aliases token endpoint (RFC 8705 §5)', async () => {
    const before = { main: oidc.tokenRequests, alias: aliasRequests };
    const token = await bearerOf(await fetch(`${gw.url}/discovered/x`), upstream);
    assert.equal((await oidc.provider.ClientCredentials.find(token))?.clientId, 'mtls-client');
    assert.equal(aliasRequests, before.alias + 1);
    assert.equal(oidc.tokenRequests, before.main);
  });

  it('certificate-bound token (RFC 8705 §3): the upstream sees the certificate the token is bound to', async () => {
    const response = await fetch(`${gw.url}/bound/orders`);
    assert.equal(response.status, 200, await response.clone().text());
    assert.deepEqual(await response.json(), { bound: true, subject: 'CN=tokengate-client' });
  });

  it('a route without the client certificate cannot reuse a socket that presented it', async () => {
    assert.equal((await fetch(`${gw.url}/bound/warm`)).status, 200);
    const before = resourceServer.requests;
    const response = await fetch(`${gw.url}/unbound/orders`);
    assert.equal(response.status, 502);
    assert.equal(((await response.json()) as Record<string, unknown>).code, 'UPSTREAM_UNAVAILABLE');
    assert.equal(resourceServer.requests, before);
  });

  it('never logs the client key', async () => {
    const keyBody = pki.client.key.split('\n')[1]!;
    assert.ok(!gw.logText().includes(keyBody));
  });
});

describe('mutual-TLS config', requireProgram('openssl', 'openssl'), () => {
  const pki = testPki();
  const yaml = (connection: string) => `
secrets:
  cert: { env: TG_CERT }
  key: { env: TG_KEY }
  other-key: { env: TG_OTHER_KEY }
  secret: { value: s }
connections:
  c:
    clientId: x
${connection}
`;
  const env = { TG_CERT: pki.client.cert, TG_KEY: pki.client.key, TG_OTHER_KEY: pki.selfSigned.key };
  const problems = async (text: string) => {
    try {
      await buildConfigTextOnly(text, 'gateway.yaml', { env });
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
  };

  it('refuses a key that does not belong to the certificate, naming the key path', async () => {
    const found = await problems(yaml('    tokenUrl: https://as.example/token\n    tlsClientAuth: { certificate: cert, key: other-key }'));
    assert.deepEqual(found, ['connections.c.tlsClientAuth.key: the key does not belong to the certificate']);
  });

  it('refuses mutual TLS to an http: token endpoint', async () => {
    const found = await problems(yaml('    tokenUrl: http://127.0.0.1:1/token\n    tlsClientAuth: { certificate: cert, key: key }'));
    assert.deepEqual(found, ['connections.c.tlsClientAuth: mutual TLS needs an https: tokenUrl or issuer']);
  });

  it('refuses a second authentication method next to tlsClientAuth', async () => {
    const found = await problems(
      yaml(
        '    tokenUrl: https://as.example/token\n    clientSecret: { secret: secret }\n    tlsClientAuth: { certificate: cert, key: key }',
      ),
    );
    assert.deepEqual(found, ['connections.c: set exactly one of clientSecret, privateKeyJwt, tlsClientAuth and clientAssertion']);
  });

  it('sends only client_id in the form: the certificate is the credential', async () => {
    const config = await buildConfigTextOnly(
      yaml('    tokenUrl: https://as.example/token\n    tlsClientAuth: { certificate: cert, key: key }'),
      'gateway.yaml',
      { env },
    );
    const auth = config.connections.get('c')!.auth;
    const body = new URLSearchParams();
    const headers: Record<string, string> = {};
    await auth.apply(body, headers, { tokenEndpoint: 'https://as.example/token', issuer: undefined });
    assert.equal(auth.method, 'tls_client_auth');
    assert.equal(body.toString(), 'client_id=x');
    assert.deepEqual(headers, {});
  });
});
