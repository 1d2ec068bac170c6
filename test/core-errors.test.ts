/** Every error the gateway answers itself: code, status, problem+json body, Retry-After. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { startBlackhole, type Blackhole } from './support/blackhole.js';
import { rawRequest } from './support/raw.js';
import { freePort, json, startServer, startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';

type Problem = Record<string, unknown>;

/** Asserts the RFC 9457 shape of a gateway answer and returns its body. */
async function problem(response: Response, code: string, status: number): Promise<Problem> {
  assert.equal(response.status, status);
  assert.equal(response.headers.get('content-type'), 'application/problem+json');
  const body = (await response.json()) as Problem;
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  for (const field of ['type', 'title', 'detail', 'requestId']) assert.equal(typeof body[field], 'string', field);
  assert.equal(body.requestId, response.headers.get('x-request-id'));
  return body;
}

describe('errors the gateway answers itself', () => {
  let oidc: OidcServer;
  let faults: TestServer;
  let good: TestServer;
  let upstream: TestServer;
  let hanging: TestServer;
  let blackhole: Blackhole;
  let gw: TestGateway;
  // A valid token response, only far too big: without the cap it would be accepted.
  const huge = JSON.stringify({ access_token: 'huge-but-valid', token_type: 'Bearer', padding: 'a'.repeat(10 * 1024 * 1024) });

  before(async () => {
    oidc = await startOidcProvider([{ client_id: 'real-client', client_secret: 'the-right-secret-0123456789' }]);
    good = await startTokenEndpoint(tokenIssuer());
    // One fault per path; the connection named after it points here.
    faults = await startTokenEndpoint((req, res) => {
      switch (req.url) {
        case '/bad-json':
          return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token": "abc"');
        case '/no-token':
          return json(res, 200, { token_type: 'Bearer', expires_in: 60 });
        case '/unicode-token':
          return json(res, 200, { access_token: 'tök€n', token_type: 'Bearer' });
        case '/mac':
          return json(res, 200, { access_token: 'abc', token_type: 'mac', expires_in: 60 });
        case '/busy':
          return json(res, 503, { error: 'temporarily_unavailable' }, { 'retry-after': '7' });
        case '/redirect':
          return void res.writeHead(307, { location: `${good.url}/token` }).end();
        case '/huge':
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(huge);
        case '/hang-after-headers':
          return void res.writeHead(200, { 'content-type': 'application/json' }).write('{"access_token":');
        case '/hang':
          return; // never answers
        default:
          return json(res, 404, {});
      }
    });
    upstream = await startServer((_req, res) => res.end('ok'));
    hanging = await startServer((req, res) => {
      if (req.url?.endsWith('/reset') === true) res.socket?.destroy();
      if (req.url?.includes('/midway') === true) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('the first half, ');
        if (req.url.endsWith('/close')) res.socket?.end();
      }
      // otherwise never answers (or never finishes)
    });
    blackhole = await startBlackhole();
    const closedTokenPort = await freePort();
    const closedUpstreamPort = await freePort();

    // Short time-outs only where a time-out is the point: elsewhere a busy machine would turn them into flakes.
    const conn = (name: string, url: string) => `
  ${name}:
    clientId: gw
    tokenUrl: ${url}
    clientSecret: { secret: s }${name.startsWith('hang') ? '\n    timeouts: { totalMs: 300 }' : ''}
    retry: { maxAttempts: 1 }`;
    const route = (name: string, connection: string, extra = '') => `
  - name: ${name}
    match: { pathPrefix: /${name} }
    upstream: ${upstream.url}
    auth: { connection: ${connection} }${extra}`;
    const faultNames = ['bad-json', 'no-token', 'unicode-token', 'mac', 'busy', 'redirect', 'huge', 'hang-after-headers', 'hang'];
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets:
  s: { value: fault-endpoint-secret }
  wrong: { value: the-wrong-secret }
connections:
  real:
    clientId: real-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: wrong }
${conn('closed', `http://127.0.0.1:${closedTokenPort}/token`)}
  unreachable:
    clientId: gw
    tokenUrl: ${blackhole.url}/token
    clientSecret: { secret: s }
    timeouts: { connectMs: 300, totalMs: 60000 }
    retry: { maxAttempts: 1 }
${faultNames.map((name) => conn(name, `${faults.url}/${name}`)).join('')}
routes:
${route('rejected', 'real')}
${route('closed', 'closed')}
${route('unreachable', 'unreachable')}
${faultNames.map((name) => route(name, name)).join('')}
  - name: upstream-closed
    match: { pathPrefix: /upstream-closed }
    upstream: http://127.0.0.1:${closedUpstreamPort}
    auth: { type: none }
  - name: upstream-unreachable
    match: { pathPrefix: /upstream-unreachable }
    upstream: ${blackhole.url}
    auth: { type: none }
    timeouts: { connectMs: 300, responseMs: 60000 }
  - name: upstream-slow
    match: { pathPrefix: /upstream-slow }
    upstream: ${hanging.url}
    auth: { type: none }
    timeouts: { responseMs: 300 }
`);
  });

  after(async () => {
    await gw.stop();
    await Promise.all([oidc.close(), faults.close(), good.close(), upstream.close(), hanging.close(), blackhole.close()]);
  });

  const get = (path: string, init?: RequestInit) => fetch(`${gw.url}${path}`, init);

  it('ROUTE_NOT_FOUND 404 when no route matches', async () => {
    await problem(await get('/none'), 'ROUTE_NOT_FOUND', 404);
  });

  it('TOKEN_REJECTED 502 with oauthError when oidc-provider refuses the client secret', async () => {
    const body = await problem(await get('/rejected/x'), 'TOKEN_REJECTED', 502);
    assert.equal(body.oauthError, 'invalid_client');
    assert.equal(body.route, 'rejected');
    assert.equal(body.connection, 'real');
    assert.equal(upstream.received.length, 0);
  });

  it('TOKEN_ENDPOINT_UNAVAILABLE 503 with Retry-After when the token endpoint refuses connections', async () => {
    const response = await get('/closed/x');
    const body = await problem(response, 'TOKEN_ENDPOINT_UNAVAILABLE', 503);
    assert.match(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.equal(body.connection, 'closed');
  });

  it("TOKEN_ENDPOINT_UNAVAILABLE 503 passes on the token endpoint's Retry-After", async () => {
    const response = await get('/busy/x');
    await problem(response, 'TOKEN_ENDPOINT_UNAVAILABLE', 503);
    assert.equal(response.headers.get('retry-after'), '7');
  });

  it('TOKEN_ENDPOINT_TIMEOUT 504 when the token endpoint never answers', async () => {
    const body = await problem(await get('/hang/x'), 'TOKEN_ENDPOINT_TIMEOUT', 504);
    assert.equal(body.connection, 'hang');
  });

  it('TOKEN_ENDPOINT_TIMEOUT 504 after connectMs when the token endpoint never accepts the connection', { timeout: 10_000 }, async () => {
    await problem(await get('/unreachable/x'), 'TOKEN_ENDPOINT_TIMEOUT', 504);
  });

  it('TOKEN_ENDPOINT_TIMEOUT 504 when the token endpoint stalls mid-response', async () => {
    await problem(await get('/hang-after-headers/x'), 'TOKEN_ENDPOINT_TIMEOUT', 504);
  });

  for (const [fault, what] of [
    ['bad-json', 'a body that is not JSON'],
    ['no-token', 'no access_token'],
    ['mac', 'token_type "mac"'],
    ['unicode-token', 'an access_token that cannot be a header value (regression: crashed the process)'],
  ] as const) {
    it(`TOKEN_RESPONSE_INVALID 502 for a 2xx with ${what}`, async () => {
      const body = await problem(await get(`/${fault}/x`), 'TOKEN_RESPONSE_INVALID', 502);
      assert.equal(body.connection, fault);
    });
  }

  it('never follows a redirect from the token endpoint', async () => {
    await problem(await get('/redirect/x'), 'TOKEN_REJECTED', 502);
    assert.equal(good.received.length, 0);
  });

  it('caps a huge token response instead of reading it whole', async () => {
    const body = await problem(await get('/huge/x'), 'TOKEN_RESPONSE_INVALID', 502);
    assert.match(String(body.detail), /larger than/);
    assert.equal(upstream.received.length, 0);
  });

  it('UPSTREAM_UNAVAILABLE 502 when the upstream refuses connections', async () => {
    const body = await problem(await get('/upstream-closed/x'), 'UPSTREAM_UNAVAILABLE', 502);
    assert.equal(body.route, 'upstream-closed');
  });

  it('UPSTREAM_UNAVAILABLE 502 when the upstream resets the connection', async () => {
    await problem(await get('/upstream-slow/reset'), 'UPSTREAM_UNAVAILABLE', 502);
  });

  it('UPSTREAM_TIMEOUT 504 after connectMs when the upstream never accepts the connection', { timeout: 10_000 }, async () => {
    const body = await problem(await get('/upstream-unreachable/x'), 'UPSTREAM_TIMEOUT', 504);
    assert.equal(body.route, 'upstream-unreachable');
  });

  it('UPSTREAM_TIMEOUT 504 when the upstream does not answer in time', async () => {
    const body = await problem(await get('/upstream-slow/x'), 'UPSTREAM_TIMEOUT', 504);
    assert.equal(body.route, 'upstream-slow');
  });

  // Regression: the caller got the first half and then waited forever. (A body that merely
  // stalls is left alone: responseMs bounds the wait for the headers, and streams may be slow.)
  it('cuts the answer short when the upstream closes the connection mid-body', { timeout: 10_000 }, async () => {
    // Either way the caller learns the answer is broken and stops waiting: on Node 20 the head has
    // gone out and the body is cut short; on Node 24 the head, the first bytes and the close reach
    // undici in one read, it fails the exchange before the head is passed on, and the caller gets 502.
    const response = await get('/upstream-slow/midway/close');
    if (response.status === 502) {
      const body = (await response.json()) as { code: string };
      assert.equal(body.code, 'UPSTREAM_UNAVAILABLE');
    } else {
      assert.equal(response.status, 200);
      await assert.rejects(response.text());
    }
  });

  for (const [what, request, status] of [
    ['an invalid header name', 'GET /x HTTP/1.1\r\nHost: h\r\nBad Header: v\r\n\r\n', 400],
    [
      'both Content-Length and Transfer-Encoding',
      'POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    ['headers over maxHeaderBytes', `GET /x HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ] as const) {
    it(`BAD_REQUEST ${status} as problem+json with X-Request-Id for ${what}`, async () => {
      const response = await rawRequest(gw.url, request);
      assert.equal(response.status, status);
      assert.equal(response.headers['content-type'], 'application/problem+json');
      const body = JSON.parse(response.body) as Problem;
      assert.equal(body.code, 'BAD_REQUEST');
      assert.equal(body.status, status);
      assert.match(response.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(body.requestId, response.headers['x-request-id']);
    });
  }

  it('UPSTREAM_TIMEOUT 504 also for a request that expects 100-continue', { timeout: 10_000 }, async () => {
    const { host } = new URL(gw.url);
    const response = await rawRequest(
      gw.url,
      `POST /upstream-slow/expect HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello`,
    );
    assert.match(response.text, /HTTP\/1\.1 504 /);
    assert.match(response.text, /"code":"UPSTREAM_TIMEOUT"/);
  });
});
