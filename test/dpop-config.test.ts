/**
 * DPoP keys and algorithms checked when the config loads (and by `validate`), the thumbprint, the
 * proof a token request carries, and a token endpoint that does not bind the token.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { ConfigError } from '../src/config/errors.js';
import type { TokenError } from '../src/errors/gateway.js';
import type { DpopSigner } from '../src/tokens/dpop/proof.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { startGateway, writeConfig, type TestGateway } from './support/gateway.js';
import { encodeKey, generateKey, type KeySpec } from './support/keys.js';
import { json, startEchoUpstream, startServer, startTokenEndpoint, type TestServer } from './support/servers.js';

function yamlWith(dpop: string, secrets = '', cache = ''): string {
  return `
secrets:
  client: { value: client-secret }
${secrets}
${cache}
connections:
  c:
    clientId: gw
    tokenUrl: http://127.0.0.1:1/token
    clientSecret: { secret: client }
    dpop: ${dpop}
`;
}

function keySecret(spec: KeySpec, encoding: 'pkcs8' | 'jwk' = 'pkcs8'): string {
  return `  dpop-key: { value: ${JSON.stringify(encodeKey(generateKey(spec).privateKey, encoding))} }`;
}

async function problemsOf(yaml: string): Promise<Array<{ path: string; message: string }>> {
  try {
    await buildConfigTextOnly(yaml, 'gateway.yaml', { env: {} });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems.map(({ path, message }) => ({ path, message }));
  }
  return [];
}

describe('DPoP config', () => {
  it('a key/algorithm mismatch is a problem at connections.KEY.dpop.algorithm', async () => {
    const problems = await problemsOf(yamlWith('{ key: dpop-key, algorithm: EdDSA }', keySecret({ type: 'ec', curve: 'P-256' })));
    assert.deepEqual(
      problems.map((p) => p.path),
      ['connections.c.dpop.algorithm'],
    );
    assert.match(problems[0]!.message, /EdDSA cannot be used with this EC P-256 key; use ES256/);
  });

  it('the generated key is P-256: another algorithm without a key is a problem at dpop.algorithm', async () => {
    const problems = await problemsOf(yamlWith('{ algorithm: PS256 }'));
    assert.deepEqual(
      problems.map((p) => p.path),
      ['connections.c.dpop.algorithm'],
    );
  });

  it('validate (the CLI) prints the key path and exits 1', (t) => {
    const cli = new URL('../dist/cli.js', import.meta.url).pathname;
    if (!existsSync(cli)) return t.skip('dist/cli.js is missing: npm run build (npm test does)');
    const { configFile } = writeConfig(yamlWith('{ key: dpop-key, algorithm: ES384 }', keySecret({ type: 'ed25519' })));
    const run = spawnSync(process.execPath, [cli, 'validate', '--config', configFile], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.match(run.stdout + run.stderr, /connections\.c\.dpop\.algorithm: ES384 cannot be used with this Ed25519 key; use EdDSA/);
  });

  it('refuses RSA keys under 2048 bits, P-521 and unreadable keys at dpop.key', async () => {
    for (const secret of [
      keySecret({ type: 'rsa', bits: 1024 }),
      keySecret({ type: 'ec', curve: 'P-521' }),
      '  dpop-key: { value: "not a key" }',
    ]) {
      const problems = await problemsOf(yamlWith('{ key: dpop-key }', secret));
      assert.deepEqual(
        problems.map((p) => p.path),
        ['connections.c.dpop.key'],
        secret.slice(0, 60),
      );
      const value = JSON.parse(secret.slice(secret.indexOf('value: ') + 7, -2)) as string;
      if (value.length > 60) assert.ok(!problems[0]!.message.includes(value.slice(30, 60)), 'the message never quotes the key');
    }
  });

  it('an unknown secret and an unknown algorithm are problems at their keys', async () => {
    assert.deepEqual(
      (await problemsOf(yamlWith('{ key: nowhere }'))).map((p) => p.path),
      ['connections.c.dpop.key'],
    );
    assert.deepEqual(
      (await problemsOf(yamlWith('{ algorithm: HS256 }'))).map((p) => p.path),
      ['connections.c.dpop.algorithm'],
    );
  });

  it('dpop without a key is a problem with cache.store: redis (replicas must share the key)', async () => {
    const cache = 'cache: { store: redis, allowPlaintext: true }';
    assert.deepEqual(
      (await problemsOf(yamlWith('{}', '', cache))).map((p) => p.path),
      ['connections.c.dpop.key'],
    );
    assert.deepEqual(await problemsOf(yamlWith('{ key: dpop-key }', keySecret({ type: 'ec', curve: 'P-256' }), cache)), []);
  });

  it('the algorithm defaults from the key: P-256 ES256, P-384 ES384, Ed25519 EdDSA, RSA PS256', async () => {
    const cases: Array<[KeySpec, string]> = [
      [{ type: 'ec', curve: 'P-256' }, 'ES256'],
      [{ type: 'ec', curve: 'P-384' }, 'ES384'],
      [{ type: 'ed25519' }, 'EdDSA'],
      [{ type: 'rsa' }, 'PS256'],
    ];
    for (const [spec, algorithm] of cases) {
      const config = await buildConfigTextOnly(yamlWith('{ key: dpop-key }', keySecret(spec, 'jwk')), 'gateway.yaml', { env: {} });
      assert.equal(config.connections.get('c')!.dpopSigner!.algorithm, algorithm);
    }
  });

  it('the thumbprint is RFC 7638 (as jose computes it), and a generated key lives as long as the process', async () => {
    const first = (await buildConfigTextOnly(yamlWith('{}'), 'gateway.yaml', { env: {} })).connections.get('c')!.dpopSigner as DpopSigner;
    const again = (await buildConfigTextOnly(yamlWith('{}'), 'gateway.yaml', { env: {} })).connections.get('c')!.dpopSigner!;
    assert.equal(first.algorithm, 'ES256');
    assert.equal(first.thumbprint, await calculateJwkThumbprint({ ...first.key.publicJwk }, 'sha256'));
    assert.equal(again.thumbprint, first.thumbprint, 'a reload keeps the generated key (and the tokens bound to it)');
    assert.deepEqual(Object.keys(first.key.publicJwk).sort(), ['crv', 'kty', 'x', 'y']);
    assert.equal(JSON.stringify(first), JSON.stringify({ algorithm: 'ES256', thumbprint: first.thumbprint }));
  });
});

describe('DPoP token requests against a token endpoint of our own', () => {
  let upstream: TestServer;
  let refusing: TestServer;
  let endpoint: TestServer;
  let gw: TestGateway;
  let answer: (index: number) => { status: number; body: unknown; headers?: Record<string, string> };

  before(async () => {
    upstream = await startEchoUpstream();
    refusing = await startServer((_req, res) =>
      json(res, 401, { error: 'invalid_dpop_proof' }, { 'www-authenticate': 'DPoP error="invalid_dpop_proof", algs="ES256"' }),
    );
    endpoint = await startTokenEndpoint((req, res, body, index) => {
      const { status, body: payload, headers } = answer(index);
      json(res, status, payload, headers);
    });
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets:
  client: { value: client-secret }
connections:
  c:
    clientId: gw
    tokenUrl: ${endpoint.url}/oauth/token?tenant=1
    clientSecret: { secret: client }
    dpop: {}
routes:
  - name: r
    match: { pathPrefix: /r }
    upstream: ${upstream.url}
    auth: { connection: c }
  - name: refusing
    match: { pathPrefix: /refusing }
    upstream: ${refusing.url}
    auth: { connection: c, params: { scope: other } } # its own token: not the rejection the tests before leave behind
`);
  });
  after(async () => {
    await gw.stop();
    await endpoint.close();
    await upstream.close();
    await refusing.close();
  });

  it('a Bearer answer to a DPoP request is TOKEN_RESPONSE_INVALID, and the request carried a complete proof', async () => {
    answer = () => ({ status: 200, body: { access_token: 'unbound-token', token_type: 'Bearer', expires_in: 300 } });
    const response = await fetch(`${gw.url}/r/x`);
    assert.equal(response.status, 502);
    const problem = (await response.json()) as Record<string, unknown>;
    assert.equal(problem.code, 'TOKEN_RESPONSE_INVALID');
    assert.match(String(problem.detail), /did not bind/);
    assert.equal(upstream.received.length, 0, 'an unbound token is never sent');

    const proof = String(endpoint.received.at(-1)!.headers.dpop);
    const header = decodeProtectedHeader(proof);
    assert.equal(header.typ, 'dpop+jwt');
    assert.equal(header.alg, 'ES256');
    assert.deepEqual(Object.keys(header.jwk ?? {}).sort(), ['crv', 'kty', 'x', 'y'], 'the public key only');
    const { payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
    assert.equal(payload.htm, 'POST');
    assert.equal(payload.htu, `${endpoint.url}/oauth/token`, 'htu without the query');
    assert.ok(Math.abs(payload.iat! - Date.now() / 1000) < 60);
    assert.match(
      String(payload.jti),
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      'jti: a v4 UUID, 122 random bits',
    );
    assert.equal(payload.ath, undefined);
    assert.equal(payload.nonce, undefined);
  });

  let tests = 0;
  /**
   * A token straight from the token endpoint, as the `token` command and the admin test fetch one:
   * its own params each time, so no earlier outcome (cached token, remembered rejection, the admin
   * test's cool-down) answers instead of the endpoint.
   */
  const fetchToken = () =>
    gw.gateway.provider.fetchUncached('c', { scope: `test-${++tests}` }).then(
      (token) => ({ token, error: undefined }),
      (error: unknown) => ({ token: undefined, error: error as TokenError }),
    );

  it('use_dpop_nonce without a usable DPoP-Nonce is not retried (a retry could only fail alike)', async () => {
    const before = endpoint.received.length;
    answer = () => ({ status: 400, body: { error: 'use_dpop_nonce' }, headers: { 'dpop-nonce': 'has "quotes"' } });
    const { error } = await fetchToken();
    assert.equal(error?.oauthError, 'use_dpop_nonce');
    assert.equal(endpoint.received.length, before + 1);
  });

  it('token_type "dpop" in any case is accepted, and the proof for the retry carries the nonce', async () => {
    const before = endpoint.received.length;
    answer = (index) =>
      index === before
        ? { status: 400, body: { error: 'use_dpop_nonce' }, headers: { 'dpop-nonce': 'nonce-1' } }
        : { status: 200, body: { access_token: 'bound-token', token_type: 'dpop', expires_in: 300 } };
    const { token, error } = await fetchToken();
    assert.equal(error, undefined, String(error));
    assert.equal(token?.tokenType, 'DPoP');
    const retry = endpoint.received.at(-1)!;
    const { payload } = await jwtVerify(String(retry.headers.dpop), EmbeddedJWK, { typ: 'dpop+jwt' });
    assert.equal(payload.nonce, 'nonce-1');
    assert.notEqual(endpoint.received.at(-2)!.headers.dpop, retry.headers.dpop);
  });

  it('invalid_dpop_proof from the token endpoint is counted as a proof failure', async () => {
    answer = () => ({ status: 400, body: { error: 'invalid_dpop_proof' } });
    assert.equal((await fetchToken()).error?.oauthError, 'invalid_dpop_proof');
    const text = await (await fetch(`${gw.admin}/metrics`)).text();
    assert.match(text, /tokengate_dpop_proof_failures_total\{connection="c"\} 1\b/);
  });

  it('an upstream 401 with error="invalid_dpop_proof" reaches the caller once, unreplayed, and is counted', async () => {
    answer = () => ({ status: 200, body: { access_token: 'bound-token-2', token_type: 'DPoP', expires_in: 300 } });
    const response = await fetch(`${gw.url}/refusing/x`);
    assert.equal(response.status, 401);
    assert.equal(refusing.received.length, 1, 'a refused proof is not a reason to replay');
    assert.match(String(refusing.received[0]!.headers.authorization), /^DPoP bound-token-2$/);
    const text = await (await fetch(`${gw.admin}/metrics`)).text();
    assert.match(text, /tokengate_dpop_proof_failures_total\{connection="c"\} 2\b/);
  });
});
