/**
 * The client assertion itself (RFC 7523 §3, OIDC Core §9), decoded from the form the gateway sends
 * to a fake token endpoint: header, claims per audience mode, jti freshness (retries included),
 * lifetime, and the x5t#S256 / x5t certificate thumbprints.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { buildConfigOnly } from '../src/runtime/build.js';
import { type Connection } from '../src/config/load.js';
import { CLIENT_ASSERTION_TYPE } from '../src/tokens/client-auth.js';
import { ConnectionClient } from '../src/tokens/connection-client.js';
import { TokenProvider } from '../src/tokens/provider.js';
import { tokenKey, type TokenObserver } from '../src/tokens/types.js';
import { writeConfig } from './support/gateway.js';
import { encodeKey, generateKey, selfSignedCertificate, type TestKey } from './support/keys.js';
import { requireProgram } from './support/programs.js';
import { json, startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';

const CLIENT_ID = 'assertion-client';
const HS_SECRET = 'client-secret-jwt-0123456789abcdef-0123456789abcdef';
const NO_OBSERVER: TokenObserver = { tokenRequest: () => undefined, tokenFailure: () => undefined };

/** The DER bytes of a PEM certificate, read independently of node's X509Certificate. */
function certificateDer(pem: string): Buffer {
  const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return Buffer.from(body, 'base64');
}

describe('client assertion contents', requireProgram('openssl', 'openssl'), () => {
  let key: TestKey;
  let certificate: string;
  /** Serves discovery (issuer = its own URL) and issues tokens at /token; 503 for the first /flaky. */
  let as: TestServer;
  let connections: ReadonlyMap<string, Connection>;
  const clients: ConnectionClient[] = [];

  before(async () => {
    key = generateKey({ type: 'ec', curve: 'P-256' });
    certificate = selfSignedCertificate(key.privateKey);
    const issueToken = tokenIssuer();
    let flakyCalls = 0;
    as = await startTokenEndpoint((req, res, body, index) => {
      if (req.url === '/.well-known/openid-configuration') return json(res, 200, { issuer: as.url, token_endpoint: `${as.url}/token` });
      if (req.url === '/flaky' && flakyCalls++ === 0) return json(res, 503, { error: 'temporarily_unavailable' });
      issueToken(req, res, body, index);
    });
    const { configFile } = writeConfig(
      `
secrets:
  key: { file: client.pem }
  cert: { file: client.crt }
  hs: { value: ${HS_SECRET} }
connections:
  default-aud:
    clientId: ${CLIENT_ID}
    tokenUrl: ${as.url}/token
    privateKeyJwt: { secret: key, keyId: key-2026, algorithm: ES256 }
  issuer-aud:
    clientId: ${CLIENT_ID}
    issuer: ${as.url}
    privateKeyJwt: { secret: key, algorithm: ES256, audience: issuer }
  literal-aud:
    clientId: ${CLIENT_ID}
    tokenUrl: ${as.url}/token
    privateKeyJwt: { secret: key, algorithm: ES256, audience: "https://login.example/tenant/v2.0" }
  flaky:
    clientId: ${CLIENT_ID}
    tokenUrl: ${as.url}/flaky
    privateKeyJwt: { secret: key, algorithm: ES256 }
  with-cert:
    clientId: ${CLIENT_ID}
    tokenUrl: ${as.url}/token
    privateKeyJwt: { secret: key, algorithm: ES256, certificate: cert }
  with-cert-sha1:
    clientId: ${CLIENT_ID}
    tokenUrl: ${as.url}/token
    privateKeyJwt: { secret: key, algorithm: ES256, certificate: cert, thumbprint: sha1 }
  hs384:
    clientId: ${CLIENT_ID}
    tokenUrl: ${as.url}/token
    clientSecret: { secret: hs, method: client_secret_jwt, algorithm: HS384 }
`,
      { 'client.pem': encodeKey(key.privateKey, 'sec1'), 'client.crt': certificate },
    );
    connections = (await buildConfigOnly(configFile)).connections;
  });

  after(async () => {
    for (const client of clients) client.close();
    await as.close();
  });

  /** Requests one token on `connection` and returns the form the token endpoint received. */
  async function sentForm(connection: string): Promise<URLSearchParams> {
    const client = new ConnectionClient(connections.get(connection)!);
    clients.push(client);
    await client.requestToken({}, AbortSignal.timeout(5_000));
    return formOf(as.received.at(-1)!.body);
  }

  const formOf = (body: Buffer) => new URLSearchParams(body.toString('utf8'));
  const assertionOf = (form: URLSearchParams) => form.get('client_assertion')!;

  it('sends client_assertion_type jwt-bearer and client_id, and no client secret or Basic header', async () => {
    const form = await sentForm('default-aud');
    assert.equal(form.get('grant_type'), 'client_credentials');
    assert.equal(form.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.equal(form.get('client_id'), CLIENT_ID);
    assert.equal(form.has('client_secret'), false);
    assert.equal(as.received.at(-1)!.headers.authorization, undefined);
  });

  it('signs with the configured algorithm and key, header alg, kid and typ JWT', async () => {
    const assertion = assertionOf(await sentForm('default-aud'));
    assert.deepEqual(decodeProtectedHeader(assertion), { alg: 'ES256', kid: 'key-2026', typ: 'JWT' });
    await jwtVerify(assertion, key.publicKey, { algorithms: ['ES256'] });
  });

  it('leaves kid out when no keyId is configured', async () => {
    const header = decodeProtectedHeader(assertionOf(await sentForm('literal-aud')));
    assert.equal('kid' in header, false);
  });

  it('claims iss = sub = client id, aud = the token endpoint by default, and lives at most 60 s', async () => {
    const claims = decodeJwt(assertionOf(await sentForm('default-aud')));
    assert.equal(claims.iss, CLIENT_ID);
    assert.equal(claims.sub, CLIENT_ID);
    assert.equal(claims.aud, `${as.url}/token`);
    assert.equal(typeof claims.iat, 'number');
    assert.equal(typeof claims.exp, 'number');
    assert.ok(claims.exp! > claims.iat!);
    assert.ok(claims.exp! - claims.iat! <= 60);
    assert.ok(Math.abs(claims.iat! - Date.now() / 1000) <= 5);
    assert.match(claims.jti!, /\S{16,}/);
  });

  it('uses the discovered issuer as aud with audience: issuer', async () => {
    const claims = decodeJwt(assertionOf(await sentForm('issuer-aud')));
    assert.equal(claims.aud, as.url);
    assert.equal(as.received.at(-1)!.url, '/token');
  });

  it('uses a literal audience as given', async () => {
    const claims = decodeJwt(assertionOf(await sentForm('literal-aud')));
    assert.equal(claims.aud, 'https://login.example/tenant/v2.0');
  });

  it('never repeats a jti across 100 assertions', async () => {
    const client = new ConnectionClient(connections.get('default-aud')!);
    clients.push(client);
    const first = as.received.length;
    for (let i = 0; i < 100; i++) await client.requestToken({}, AbortSignal.timeout(5_000));
    const jtis = as.received.slice(first).map((r) => decodeJwt(assertionOf(formOf(r.body))).jti);
    assert.equal(jtis.length, 100);
    assert.equal(new Set(jtis).size, 100);
  });

  it('signs a fresh assertion (new jti) for a retry after a 503', async () => {
    const provider = new TokenProvider([connections.get('flaky')!], NO_OBSERVER);
    try {
      const first = as.received.length;
      const token = await provider.get(tokenKey('flaky', {}));
      assert.match(token.accessToken, /^tok-/);
      const attempts = as.received.slice(first).filter((r) => r.url === '/flaky');
      assert.equal(attempts.length, 2);
      const [a, b] = attempts.map((r) => assertionOf(formOf(r.body)));
      assert.notEqual(a, b);
      assert.notEqual(decodeJwt(a!).jti, decodeJwt(b!).jti);
      for (const assertion of [a!, b!])
        await jwtVerify(assertion, key.publicKey, { audience: `${as.url}/flaky`, issuer: CLIENT_ID, subject: CLIENT_ID });
    } finally {
      provider.close();
    }
  });

  it('adds x5t#S256, the base64url SHA-256 of the DER certificate, and no x5t by default', async () => {
    const header = decodeProtectedHeader(assertionOf(await sentForm('with-cert')));
    assert.equal(header['x5t#S256'], createHash('sha256').update(certificateDer(certificate)).digest('base64url'));
    assert.equal('x5t' in header, false);
  });

  it('adds x5t, the base64url SHA-1 of the DER certificate, with thumbprint: sha1', async () => {
    const header = decodeProtectedHeader(assertionOf(await sentForm('with-cert-sha1')));
    assert.equal(header.x5t, createHash('sha1').update(certificateDer(certificate)).digest('base64url'));
    assert.equal(header['x5t#S256'], createHash('sha256').update(certificateDer(certificate)).digest('base64url'));
  });

  it('signs client_secret_jwt with the selected HMAC algorithm and the client secret', async () => {
    const form = await sentForm('hs384');
    const assertion = assertionOf(form);
    assert.deepEqual(decodeProtectedHeader(assertion), { alg: 'HS384', typ: 'JWT' });
    const { payload } = await jwtVerify(assertion, new TextEncoder().encode(HS_SECRET), { algorithms: ['HS384'] });
    assert.equal(payload.iss, CLIENT_ID);
    assert.equal(payload.sub, CLIENT_ID);
    assert.equal(payload.aud, `${as.url}/token`);
    assert.equal(form.get('client_id'), CLIENT_ID);
    assert.equal(form.get('client_assertion_type'), CLIENT_ASSERTION_TYPE);
  });
});
