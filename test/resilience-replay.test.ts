/**
 * Upstream 401 → drop the token, fetch one new token, replay the request once (RFC 6750 §3.1
 * `error="invalid_token"`, or any 401 when the route says so), only when the request can be sent
 * again; never more than one refetch for many callers holding the same revoked token.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { metricValue } from './support/faults.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { json, startServer, startTokenEndpoint, type TestServer } from './support/servers.js';

const REPLAY_BODY_LIMIT = 1024;

describe('401 replay', () => {
  let endpoint: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;
  const revoked = new Set<string>();
  const issued = new Map<string, number>();

  before(async () => {
    // Tokens are tok-<connection>-<n>, so each test's connection counts its own token requests.
    endpoint = await startTokenEndpoint((req, res) => {
      const connection = (req.url ?? '').slice(1);
      const n = (issued.get(connection) ?? 0) + 1;
      issued.set(connection, n);
      json(res, 200, { access_token: `tok-${connection}-${n}`, token_type: 'Bearer', expires_in: 300 });
    });
    // /invalid answers a revoked token with RFC 6750's invalid_token, /plain with a bare 401,
    // /always refuses every token.
    upstream = await startServer((req, res, body) => {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      const kind = (req.url ?? '').split('/')[1];
      if (kind === 'always' || revoked.has(token)) {
        const challenge =
          kind === 'plain' ? {} : { 'www-authenticate': 'Bearer realm="api", error="invalid_token", error_description="revoked"' };
        res.writeHead(401, { 'content-type': 'text/plain', ...challenge });
        return res.end(`upstream says no to ${kind}`);
      }
      json(res, 200, { token, body: body.toString('latin1').slice(0, 64), bodyLength: body.length });
    });
    const names = ['get', 'post', 'bare', 'large', 'off', 'any', 'plain', 'crowd', 'always'];
    const routeExtras: Record<string, string> = { off: 'replayOn401: off', any: 'replayOn401: any', plain: '', large: '' };
    const upstreamKind: Record<string, string> = { any: 'plain', plain: 'plain', always: 'always' };
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: secret-0123456789 } }
connections:${names
      .map(
        (n) => `
  c-${n}: { clientId: ${n}, tokenUrl: ${endpoint.url}/c-${n}, clientSecret: { secret: s } }`,
      )
      .join('')}
routes:${names
      .map(
        (n) => `
  - name: r-${n}
    match: { pathPrefix: /${n} }
    upstream: ${upstream.url}/${upstreamKind[n] ?? 'invalid'}
    stripPrefix: true
    auth: { connection: c-${n} }
    replayBodyLimit: ${REPLAY_BODY_LIMIT}
    ${routeExtras[n] ?? ''}`,
      )
      .join('')}
`);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await endpoint.close();
  });

  /** Gets a token cached for `name` and revokes it at the upstream; returns it. */
  async function cacheThenRevoke(name: string): Promise<string> {
    const warm = await fetch(`${gw.url}/${name}/warm`);
    assert.equal(warm.status, 200);
    const { token } = (await warm.json()) as { token: string };
    revoked.add(token);
    return token;
  }

  const upstreamSaw = (path: string) => upstream.received.filter((r) => r.url.endsWith(path));

  it('GET: exactly one refetch and one replay; the caller gets 200 with the new token', async () => {
    await cacheThenRevoke('get');
    const response = await fetch(`${gw.url}/get/orders`);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { token: string }).token, 'tok-c-get-2');
    assert.equal(issued.get('c-get'), 2);
    assert.deepEqual(
      upstreamSaw('/orders').map((r) => r.headers.authorization),
      ['Bearer tok-c-get-1', 'Bearer tok-c-get-2'],
    );
  });

  it('POST with a small body: replayed with the same body', async () => {
    await cacheThenRevoke('post');
    const payload = JSON.stringify({ order: 42, note: 'same bytes twice' });
    const response = await fetch(`${gw.url}/post/orders-post`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: payload,
    });
    assert.equal(response.status, 200);
    const seen = upstreamSaw('/orders-post');
    assert.equal(seen.length, 2);
    assert.deepEqual(
      seen.map((r) => r.body.toString()),
      [payload, payload],
    );
    assert.deepEqual(
      seen.map((r) => r.headers['content-length']),
      [String(payload.length), String(payload.length)],
    );
    assert.equal(issued.get('c-post'), 2);
  });

  it('POST without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3), so it is replayed', async () => {
    await cacheThenRevoke('bare');
    const url = new URL(gw.url);
    const socket = connect(Number(url.port), url.hostname);
    socket.write(`POST /bare/bare-post HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
    let answer = '';
    for await (const chunk of socket) answer += String(chunk);
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.equal(upstreamSaw('/bare-post').length, 2);
    assert.equal(issued.get('c-bare'), 2);
  });

  it('POST with a body larger than replayBodyLimit: streamed, not replayed; the caller gets the 401, the next request a new token', async () => {
    await cacheThenRevoke('large');
    const payload = Buffer.alloc(100 * REPLAY_BODY_LIMIT, 'x');
    const response = await fetch(`${gw.url}/large/upload`, { method: 'POST', body: payload });
    assert.equal(response.status, 401);
    assert.match(await response.text(), /upstream says no/);
    const seen = upstreamSaw('/upload');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.body.length, payload.length);
    // The refused token was dropped all the same, so the next caller does not hit the same 401.
    const next = await fetch(`${gw.url}/large/after`);
    assert.equal(next.status, 200);
    assert.equal(upstreamSaw('/after').length, 1);
    assert.equal(issued.get('c-large'), 2);
  });

  it('replayOn401: off passes the 401 through and keeps the token', async () => {
    await cacheThenRevoke('off');
    const response = await fetch(`${gw.url}/off/orders-off`);
    assert.equal(response.status, 401);
    assert.equal(upstreamSaw('/orders-off').length, 1);
    assert.equal(issued.get('c-off'), 1);
  });

  it('replayOn401: any replays on a 401 without an invalid_token challenge', async () => {
    await cacheThenRevoke('any');
    const response = await fetch(`${gw.url}/any/orders-any`);
    assert.equal(response.status, 200);
    assert.equal(upstreamSaw('/orders-any').length, 2);
    assert.equal(issued.get('c-any'), 2);
  });

  it('the default (invalid_token) does not replay a bare 401', async () => {
    await cacheThenRevoke('plain');
    const response = await fetch(`${gw.url}/plain/orders-plain`);
    assert.equal(response.status, 401);
    assert.equal(upstreamSaw('/orders-plain').length, 1);
    assert.equal(issued.get('c-plain'), 1);
  });

  it('concurrent callers hitting the same revoked token cause one refetch', async () => {
    await cacheThenRevoke('crowd');
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${gw.url}/crowd/c${i}`)));
    assert.deepEqual(
      responses.map((r) => r.status),
      Array(20).fill(200),
    );
    assert.equal(issued.get('c-crowd'), 2);
  });

  it('a fresh token refused too: the caller gets the upstream 401, counted as upstream_unauthorized', async () => {
    const labels = { route: 'r-always', connection: 'c-always', reason: 'upstream_unauthorized' };
    const before = await metricValue(gw.admin, 'tokengate_auth_failures_total', labels);
    const response = await fetch(`${gw.url}/always/x`);
    assert.equal(response.status, 401);
    assert.equal(await response.text(), 'upstream says no to always');
    assert.match(response.headers.get('www-authenticate') ?? '', /invalid_token/);
    assert.equal(issued.get('c-always'), 2);
    assert.equal(upstreamSaw('/always/x').length, 2);
    assert.equal(await metricValue(gw.admin, 'tokengate_auth_failures_total', labels), before + 1);
  });
});
