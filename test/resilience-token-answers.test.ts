/** What a token endpoint sends never crashes the gateway. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { plaintextCodec } from '../src/cache/crypto.js';
import { json, startEchoUpstream, startTokenEndpoint, type TestServer } from './support/servers.js';
import { startGateway, type TestGateway } from './support/gateway.js';

describe('access tokens that cannot go into a header', () => {
  let upstream: TestServer;
  let tokens: TestServer;
  let gw: TestGateway;

  before(async () => {
    upstream = await startEchoUpstream();
    // The scope names the token to hand out, so each route gets its own.
    tokens = await startTokenEndpoint((_req, res, body) => {
      const scope = new URLSearchParams(body.toString()).get('scope') ?? '';
      const token = { unicode: 'tok\u0100en', latin1: 'tok\u00e9n', space: 'tok en', fine: 'tok-en_1.~+/=' }[scope];
      json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 300 });
    });
    const route = (scope: string) => `
  - name: ${scope}
    match: { pathPrefix: /${scope} }
    upstream: ${upstream.url}
    auth: { connection: as, params: { scope: ${scope} } }`;
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: audit-secret } }
connections:
  as: { clientId: audit, tokenUrl: ${tokens.url}, clientSecret: { secret: s }, retry: { maxAttempts: 1 } }
routes:${['unicode', 'latin1', 'space', 'fine'].map(route).join('')}
`);
  });

  after(async () => {
    await gw.stop();
    await tokens.close();
    await upstream.close();
  });

  for (const scope of ['unicode', 'latin1', 'space']) {
    it(
      `answers 502 TOKEN_RESPONSE_INVALID for an access_token with a non-printable-ASCII character (${scope}), and keeps serving`,
      { timeout: 10_000 },
      async () => {
        const before = upstream.received.length;
        const response = await fetch(`${gw.url}/${scope}/x`);
        assert.equal(response.status, 502);
        assert.equal(((await response.json()) as { code: string }).code, 'TOKEN_RESPONSE_INVALID');
        assert.equal(upstream.received.length, before);
        const fine = await fetch(`${gw.url}/fine/x`);
        assert.equal(fine.status, 200);
        assert.equal(((await fine.json()) as { authorization: string }).authorization, 'Bearer tok-en_1.~+/=');
      },
    );
  }
});

describe('tokens read back from the shared cache', () => {
  it('reads a plaintext Redis entry whose token cannot go into a header as a damaged entry, not a token', () => {
    let corrupt = 0;
    const codec = plaintextCodec(() => corrupt++);
    const now = Date.now();
    const entry = (a: string) => `p1.${JSON.stringify({ a, s: null, o: now, e: now + 60_000, u: now + 30_000, r: null })}`;
    assert.equal(codec.decode(entry('tok-fine'), 'k')?.accessToken, 'tok-fine');
    assert.equal(codec.decode(entry('tok\u0100en'), 'k'), undefined);
    assert.equal(corrupt, 1);
  });
});

describe('a token endpoint that quotes the credentials it was sent', () => {
  const BASIC_SECRET = 'basic-secret: with+form&chars';
  const POST_SECRET = 'post-secret-0123456789';
  const JWT_SECRET = 'jwt-secret-0123456789-0123456789-0123456789';
  let tokens: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    upstream = await startEchoUpstream();
    // Quotes everything it got: the Basic header, the decoded pair, the form's secret and assertion.
    tokens = await startTokenEndpoint((req, res, body) => {
      const form = new URLSearchParams(body.toString());
      const authorization = req.headers.authorization ?? '';
      const pair = Buffer.from(authorization.replace(/^Basic /, ''), 'base64').toString('utf8');
      const decoded = decodeURIComponent(pair.slice(pair.indexOf(':') + 1).replaceAll('+', ' '));
      const quoted = [authorization, decoded, form.get('client_secret'), form.get('client_assertion')].filter(
        (v) => v !== null && v !== '',
      );
      json(res, 401, { error: 'invalid_client', error_description: `bad credentials: ${quoted.join(' | ')}` });
    });
    const route = (name: string) => `
  - name: ${name}
    match: { pathPrefix: /${name} }
    upstream: ${upstream.url}
    auth: { connection: ${name} }`;
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  basic: { env: AUDIT_BASIC }
  post: { env: AUDIT_POST }
  jwt: { env: AUDIT_JWT }
connections:
  basic: { clientId: "basic:client", tokenUrl: ${tokens.url}, clientSecret: { secret: basic } }
  post: { clientId: post-client, tokenUrl: ${tokens.url}, clientSecret: { secret: post, method: client_secret_post } }
  jwt: { clientId: jwt-client, tokenUrl: ${tokens.url}, clientSecret: { secret: jwt, method: client_secret_jwt } }
routes:${['basic', 'post', 'jwt'].map(route).join('')}
`,
      { env: { ...process.env, AUDIT_BASIC: BASIC_SECRET, AUDIT_POST: POST_SECRET, AUDIT_JWT: JWT_SECRET } },
    );
  });

  after(async () => {
    await gw.stop();
    await tokens.close();
    await upstream.close();
  });

  for (const name of ['basic', 'post', 'jwt']) {
    it(`keeps the ${name} credentials out of the problem detail, /usage and the logs`, async () => {
      const response = await fetch(`${gw.url}/${name}/x`);
      assert.equal(response.status, 502);
      const problem = (await response.json()) as { code: string; oauthError: string; detail: string };
      assert.equal(problem.code, 'TOKEN_REJECTED');
      assert.equal(problem.oauthError, 'invalid_client');
      assert.match(problem.detail, /\[redacted\]/);
      const sent = tokens.received.at(-1)!;
      const form = new URLSearchParams(sent.body.toString());
      const credentials = [BASIC_SECRET, POST_SECRET, JWT_SECRET, sent.headers.authorization, form.get('client_assertion')].filter(
        (v): v is string => typeof v === 'string' && v !== '',
      );
      const usage = await (await fetch(`${gw.admin}/usage`)).text();
      for (const credential of credentials) {
        for (const [where, text] of [
          ['detail', problem.detail],
          ['usage', usage],
          ['logs', gw.logText()],
        ]) {
          assert.ok(!text!.includes(credential), `${where} quotes a credential of ${name}`);
        }
      }
    });
  }
});
