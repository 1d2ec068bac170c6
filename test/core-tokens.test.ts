/** The token side of the core: single flight, RFC 6749 §2.3.1 encoding, secrets kept out of sight. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { TokenProvider } from '../src/tokens/provider.js';
import { tokenKey } from '../src/tokens/types.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { json, startEchoUpstream, startTokenEndpoint, type TestServer } from './support/servers.js';

const CONCURRENT = 100;

/** Resolves once `done()` holds; checked on every turn of the event loop, no clock involved. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise<void>((resolve) => setImmediate(resolve));
}

const bearer = (server: TestServer, i: number) => server.received[i]!.headers.authorization!.replace(/^Bearer /, '');

describe('single flight on a cold cache', () => {
  let upstream: TestServer;

  before(async () => {
    upstream = await startEchoUpstream();
  });

  after(() => upstream.close());

  it(`${CONCURRENT} concurrent requests all wait for one token request (token endpoint held until all arrived)`, async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const tokens = await startTokenEndpoint((_req, res, _body, index) => {
      void released.then(() => json(res, 200, { access_token: `held-${index + 1}`, token_type: 'Bearer', expires_in: 300 }));
    });
    const gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: single-flight-secret } }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - { name: r, match: { pathPrefix: / }, upstream: ${upstream.url}, auth: { connection: c } }
`);
    try {
      const before = upstream.received.length;
      const responses = Array.from({ length: CONCURRENT }, (_, i) => fetch(`${gw.url}/held/${i}`));
      // Every request has found the cache empty before the token endpoint answers the first.
      await until(() => gw.gateway.usage.stats('c').cacheMisses >= CONCURRENT);
      release();
      const statuses = await Promise.all(responses.map(async (r) => (await r).status));
      assert.deepEqual(new Set(statuses), new Set([200]));
      assert.equal(tokens.received.length, 1);
      const seen = upstream.received.slice(before).map((r) => r.headers.authorization);
      assert.equal(seen.length, CONCURRENT);
      assert.deepEqual(new Set(seen), new Set(['Bearer held-1']));
    } finally {
      await gw.stop();
      await tokens.close();
    }
  });

  it(`${CONCURRENT} concurrent requests make exactly one token request to oidc-provider`, async () => {
    const oidc = await startOidcProvider([{ client_id: 'sf-client', client_secret: 'sf-secret-0123456789abcdef' }]);
    const gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets: { s: { env: TG_SF_SECRET } }
connections:
  c: { clientId: sf-client, tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: s } }
routes:
  - { name: r, match: { pathPrefix: / }, upstream: ${upstream.url}, auth: { connection: c } }
`,
      { env: { ...process.env, TG_SF_SECRET: 'sf-secret-0123456789abcdef' } },
    );
    try {
      const before = upstream.received.length;
      const statuses = await Promise.all(Array.from({ length: CONCURRENT }, async (_, i) => (await fetch(`${gw.url}/cold/${i}`)).status));
      assert.deepEqual(new Set(statuses), new Set([200]));
      assert.equal(oidc.tokenRequests, 1);
      const seen = new Set(upstream.received.slice(before).map((r) => r.headers.authorization));
      assert.equal(seen.size, 1);
      const introspection = await oidc.introspect(bearer(upstream, before));
      assert.equal(introspection.active, true);
      assert.equal(introspection.client_id, 'sf-client');
    } finally {
      await gw.stop();
      await oidc.close();
    }
  });
});

describe('token lifetime in the cache', () => {
  const observer = { tokenRequest: () => undefined, tokenFailure: () => undefined };

  async function providerFor(body: Record<string, unknown>, token = '') {
    const tokens = await startTokenEndpoint((_req, res) => json(res, 200, body));
    const config = await buildConfigTextOnly(
      `
secrets: { s: { value: lifetime-secret } }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s }${token} }
`,
      'lifetime.yaml',
    );
    return { tokens, provider: new TokenProvider(config.connections.values(), observer), key: tokenKey('c', {}) };
  }

  it('reuses a token until expires_in less the skew, the very same object (node-cache does not clone)', async () => {
    const { tokens, provider, key } = await providerFor(
      { access_token: 'a', token_type: 'Bearer', expires_in: 600 },
      ', token: { expirySkewSeconds: 30, refreshAhead: false }',
    );
    try {
      const token = await provider.get(key);
      assert.equal(provider.peek(key), token);
      // The lifetime counts from when the request was sent, so it ends at most 600 s after arrival.
      const lifetime = token.expiresAt - token.obtainedAt;
      assert.ok(lifetime <= 600_000 && lifetime > 590_000, `lifetime ${lifetime}`);
      assert.equal(provider.peek(key, token.expiresAt - 31_000), token);
      assert.equal(provider.peek(key, token.expiresAt - 30_000), undefined);
      assert.equal(tokens.received.length, 1);
    } finally {
      provider.close();
      await tokens.close();
    }
  });

  it('uses defaultLifetimeSeconds when the server sends no expires_in', async () => {
    const { tokens, provider, key } = await providerFor(
      { access_token: 'a', token_type: 'Bearer' },
      ', token: { defaultLifetimeSeconds: 120, refreshAhead: false }',
    );
    try {
      const token = await provider.get(key);
      const lifetime = token.expiresAt - token.obtainedAt;
      assert.ok(lifetime <= 120_000 && lifetime > 110_000, `lifetime ${lifetime}`);
      assert.ok(provider.peek(key, token.obtainedAt + 100_000) !== undefined);
      assert.equal(provider.peek(key, token.expiresAt), undefined);
    } finally {
      provider.close();
      await tokens.close();
    }
  });
});

describe('RFC 6749 §2.3.1: client_secret_basic form-encodes id and secret', () => {
  // Every character that breaks a naive `${id}:${secret}` Basic header or a naive decoder. Both are
  // VSCHAR (RFC 6749 Appendix A), which oidc-provider enforces: no non-ASCII here.
  const CLIENT_ID = 'svc:orders+eu&co %41';
  const SECRET = 'p:ss+w&rd word/=%25?#~';
  let oidc: OidcServer;
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    oidc = await startOidcProvider([
      { client_id: CLIENT_ID, client_secret: SECRET, token_endpoint_auth_method: 'client_secret_basic' },
      { client_id: `${CLIENT_ID}-post`, client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post' },
    ]);
    upstream = await startEchoUpstream();
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets: { s: { env: TG_ENCODED_SECRET } }
connections:
  basic: { clientId: "${CLIENT_ID}", tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: s } }
  post: { clientId: "${CLIENT_ID}-post", tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: s, method: client_secret_post } }
routes:
  - { name: basic, match: { pathPrefix: /basic }, upstream: ${upstream.url}, auth: { connection: basic } }
  - { name: post, match: { pathPrefix: /post }, upstream: ${upstream.url}, auth: { connection: post } }
`,
      { env: { ...process.env, TG_ENCODED_SECRET: SECRET } },
    );
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await oidc.close();
  });

  it('authenticates to oidc-provider with : + & % and space in id and secret', async () => {
    const response = await fetch(`${gw.url}/basic/x`);
    assert.equal(response.status, 200);
    const introspection = await oidc.introspect(bearer(upstream, upstream.received.length - 1));
    assert.equal(introspection.active, true);
    assert.equal(introspection.client_id, CLIENT_ID);
  });

  it('sends the same secret as a form field with client_secret_post', async () => {
    const response = await fetch(`${gw.url}/post/x`);
    assert.equal(response.status, 200);
    const introspection = await oidc.introspect(bearer(upstream, upstream.received.length - 1));
    assert.equal(introspection.client_id, `${CLIENT_ID}-post`);
  });

  it('encodes non-ASCII as UTF-8 percent-escapes (Appendix B), as a form decoder reads them back', async () => {
    const id = 'ünïcode:client';
    const secret = 'wörd€ +:&';
    const seen: string[] = [];
    const tokens = await startTokenEndpoint((req, res) => {
      const encoded = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('latin1');
      seen.push(encoded);
      const [user = '', pass = ''] = encoded.split(':');
      const decode = (part: string) => new URLSearchParams(`x=${part}`).get('x');
      if (decode(user) === id && decode(pass) === secret) json(res, 200, { access_token: 'unicode-ok', token_type: 'Bearer' });
      else json(res, 401, { error: 'invalid_client' });
    });
    const unicode = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets: { s: { env: TG_UNICODE_SECRET } }
connections:
  c: { clientId: "${id}", tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - { name: r, match: { pathPrefix: / }, upstream: ${upstream.url}, auth: { connection: c } }
`,
      { env: { ...process.env, TG_UNICODE_SECRET: secret } },
    );
    try {
      assert.equal((await fetch(`${unicode.url}/x`)).status, 200);
      assert.match(seen[0]!, /^[\x21-\x7e]+$/, 'the encoded credentials are plain ASCII');
      assert.equal(upstream.received.at(-1)!.headers.authorization, 'Bearer unicode-ok');
    } finally {
      await unicode.stop();
      await tokens.close();
    }
  });
});

describe('secrets and tokens stay out of logs, problem bodies and admin answers', () => {
  const SECRET = 'log-canary-secret-7f3a9c';
  const WRONG = 'log-canary-wrong-secret-1b2d';
  let oidc: OidcServer;
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    oidc = await startOidcProvider([{ client_id: 'logged-client', client_secret: SECRET }]);
    upstream = await startEchoUpstream();
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  good: { env: TG_LOG_SECRET }
  wrong: { env: TG_LOG_WRONG }
connections:
  good: { clientId: logged-client, tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: good } }
  wrong: { clientId: logged-client, tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: wrong, method: client_secret_post } }
routes:
  - { name: good, match: { pathPrefix: /good }, upstream: ${upstream.url}, auth: { connection: good } }
  - { name: wrong, match: { pathPrefix: /wrong }, upstream: ${upstream.url}, auth: { connection: wrong } }
`,
      { env: { ...process.env, TG_LOG_SECRET: SECRET, TG_LOG_WRONG: WRONG } },
    );
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await oidc.close();
  });

  it('never writes a client secret or an issued token anywhere but the upstream request', async () => {
    const ok = await fetch(`${gw.url}/good/x`, { headers: { authorization: 'Bearer caller-canary-token' } });
    assert.equal(ok.status, 200);
    const token = bearer(upstream, upstream.received.length - 1);
    assert.equal((await oidc.introspect(token)).active, true);
    const refused = await fetch(`${gw.url}/wrong/x`);
    assert.equal(refused.status, 502);
    const problemText = await refused.text();
    assert.match(problemText, /invalid_client/);
    const admin = await Promise.all(['/usage', '/connections', '/metrics'].map(async (path) => (await fetch(`${gw.admin}${path}`)).text()));
    // The failure was logged, so the check below looks at real log lines.
    assert.ok(gw.logs.some((line) => line.event === 'token_failure'));
    for (const [where, text] of [
      ['logs', gw.logText()],
      ['problem body', problemText],
      ...admin.map((t, i) => [`admin ${i}`, t]),
    ] as const) {
      for (const canary of [SECRET, WRONG, token, 'caller-canary-token']) {
        assert.equal(text.includes(canary), false, `${where} contains a secret or token`);
      }
    }
  });
});
