/** Header hygiene in both directions (RFC 9110 §7.6.1), request ids and X-Forwarded-*. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { rawRequest } from './support/raw.js';
import { startServer, startTokenEndpoint, tokenIssuer, type Recorded, type TestServer } from './support/servers.js';

/** All values of one header as the upstream received them on the wire. */
function rawValues(recorded: Recorded, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < recorded.rawHeaders.length; i += 2) {
    if (recorded.rawHeaders[i]!.toLowerCase() === name) out.push(recorded.rawHeaders[i + 1]!);
  }
  return out;
}

describe('header hygiene', () => {
  let tokens: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;
  let host: string;

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    upstream = await startServer((req, res) => {
      if (req.url === '/hop-by-hop') {
        res.writeHead(200, {
          connection: 'keep-alive, x-upstream-private',
          'x-upstream-private': 'for the gateway only',
          'keep-alive': 'timeout=5',
          'proxy-authenticate': 'Basic realm="up"',
          upgrade: 'h2c',
          trailer: 'x-checksum',
          'x-request-id': 'upstream-own-id',
          'x-kept': 'yes',
        });
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' });
      }
      res.end('ok');
    });
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: token-endpoint-secret } }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - name: r
    match: { pathPrefix: / }
    upstream: ${upstream.url}
    auth: { connection: c }
`);
    host = new URL(gw.url).host;
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await tokens.close();
  });

  const send = (head: string) => rawRequest(gw.url, `${head}\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  it("replaces the caller's Authorization with the injected token", async () => {
    const response = await send('GET /one HTTP/1.1\r\nAuthorization: Bearer caller-token');
    assert.equal(response.status, 200);
    assert.deepEqual(rawValues(upstream.received.at(-1)!, 'authorization'), ['Bearer tok-1']);
  });

  it('replaces, never appends, when the caller sends Authorization twice', async () => {
    const response = await send('GET /two HTTP/1.1\r\nAuthorization: Bearer first\r\nAuthorization: Basic c2Vjb25k');
    assert.equal(response.status, 200);
    assert.deepEqual(rawValues(upstream.received.at(-1)!, 'authorization'), ['Bearer tok-1']);
  });

  it('drops the headers the caller names in Connection, without losing the injected token', async () => {
    const response = await rawRequest(
      gw.url,
      `GET /named HTTP/1.1\r\nHost: ${host}\r\nConnection: close, authorization, X-Foo\r\nX-Foo: hop\r\nX-Bar: end-to-end\r\nAuthorization: Bearer caller\r\n\r\n`,
    );
    assert.equal(response.status, 200);
    const seen = upstream.received.at(-1)!;
    assert.deepEqual(rawValues(seen, 'authorization'), ['Bearer tok-1']);
    assert.equal(seen.headers['x-foo'], undefined);
    assert.equal(seen.headers['x-bar'], 'end-to-end');
  });

  it('drops hop-by-hop request headers', async () => {
    const response = await send(
      'GET /hop HTTP/1.1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: x-checksum\r\nUpgrade: h2c\r\nProxy-Authorization: Basic cHJveHk6c2VjcmV0\r\nProxy-Connection: keep-alive',
    );
    assert.equal(response.status, 200);
    const seen = upstream.received.at(-1)!;
    for (const name of ['keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection']) {
      assert.equal(seen.headers[name], undefined, name);
    }
  });

  it("removes the admin console's session cookie, both names, from Cookie and keeps every other cookie as sent", async () => {
    const response = await send(
      'GET /cookies HTTP/1.1\r\nCookie: a=1; tokengate_session=s3ss10n-id; b=two=2\r\nCookie: __Host-tokengate_session=h0st-id;c=3; tokengate_session_pref=dark; Tokengate_Session=kept',
    );
    assert.equal(response.status, 200);
    const seen = upstream.received.at(-1)!;
    // Each Cookie line goes on as its own line, as the caller sent it (and as nginx passes it).
    assert.deepEqual(rawValues(seen, 'cookie'), ['a=1; b=two=2', 'c=3; tokengate_session_pref=dark; Tokengate_Session=kept']);
    assert.ok(!seen.rawHeaders.some((value) => value.includes('s3ss10n-id') || value.includes('h0st-id')));
  });

  it("removes the single sign-on's sign-in cookie, both names, as it does the session cookie", async () => {
    const response = await send('GET /cookies HTTP/1.1\r\nCookie: a=1; tokengate_login=l0g1n-id; __Host-tokengate_login=h0st-l0g1n; b=2');
    assert.equal(response.status, 200);
    const seen = upstream.received.at(-1)!;
    assert.deepEqual(rawValues(seen, 'cookie'), ['a=1; b=2']);
    assert.ok(!seen.rawHeaders.some((value) => value.includes('l0g1n')));
  });

  it('sends no Cookie at all when the session cookie was the only one, and an untouched one when it was absent', async () => {
    await send('GET /cookies HTTP/1.1\r\nCookie: tokengate_session=s3ss10n-id');
    assert.deepEqual(rawValues(upstream.received.at(-1)!, 'cookie'), []);
    await send('GET /cookies HTTP/1.1\r\nCookie: a=1;b=2 ;  c=3');
    assert.deepEqual(rawValues(upstream.received.at(-1)!, 'cookie'), ['a=1;b=2 ;  c=3']);
  });

  // Regression: these bodies went upstream unframed and the upstream read them as a second request.
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: upstream\r\n\r\n';
  const chunked = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
  for (const [name, request] of [
    [
      'a GET with a chunked body',
      `GET /framed HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: HOST\r\nConnection: close\r\n\r\n${chunked}`,
    ],
    [
      'a DELETE with a chunked body',
      `DELETE /framed HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: HOST\r\nConnection: close\r\n\r\n${chunked}`,
    ],
    [
      'Content-Length named in Connection',
      `GET /framed HTTP/1.1\r\nContent-Length: ${smuggled.length}\r\nHost: HOST\r\nConnection: close, content-length\r\n\r\n${smuggled}`,
    ],
  ] as const) {
    it(`keeps the body framed, so it cannot smuggle a request: ${name}`, async () => {
      const before = upstream.received.length;
      const response = await rawRequest(gw.url, request.replace('HOST', host));
      assert.equal(response.status, 200);
      // A smuggled request would have been read from the same bytes as /framed's body: by the time a
      // request sent after the answer has reached the upstream, so would it.
      assert.equal((await send('GET /after-framed HTTP/1.1')).status, 200);
      const seen = upstream.received.slice(before);
      assert.deepEqual(
        seen.map((r) => r.url),
        ['/framed', '/after-framed'],
      );
      assert.equal(seen[0]!.body.toString(), smuggled);
    });
  }

  it('keeps a well-formed X-Request-Id and returns it', async () => {
    const response = await fetch(`${gw.url}/rid`, { headers: { 'x-request-id': 'caller-id-42' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-request-id'), 'caller-id-42');
    assert.equal(upstream.received.at(-1)!.headers['x-request-id'], 'caller-id-42');
  });

  it('generates an X-Request-Id when the caller sends none', async () => {
    const response = await fetch(`${gw.url}/rid`);
    const id = response.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(upstream.received.at(-1)!.headers['x-request-id'], id);
  });

  it('replaces a malformed X-Request-Id with a generated one', async () => {
    const malformed = 'bad id <script>';
    const response = await fetch(`${gw.url}/rid`, { headers: { 'x-request-id': malformed } });
    const id = response.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(upstream.received.at(-1)!.headers['x-request-id'], id);
    const tooLong = await fetch(`${gw.url}/rid`, { headers: { 'x-request-id': 'a'.repeat(129) } });
    assert.match(tooLong.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('sets X-Forwarded-For, -Proto and -Host, overriding what the caller claims', async () => {
    const response = await rawRequest(
      gw.url,
      'GET /fwd HTTP/1.1\r\nHost: Gateway.Internal:8080\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n',
    );
    assert.equal(response.status, 200);
    const seen = upstream.received.at(-1)!;
    assert.equal(seen.headers['x-forwarded-for'], '10.1.2.3, 127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'Gateway.Internal:8080');
    assert.equal(seen.headers.host, new URL(upstream.url).host);
  });

  it("drops the upstream's hop-by-hop response headers and keeps the gateway's request id", async () => {
    const response = await send('GET /hop-by-hop HTTP/1.1\r\nX-Request-Id: caller-id-7');
    assert.equal(response.status, 200);
    for (const name of ['x-upstream-private', 'keep-alive', 'proxy-authenticate', 'upgrade', 'trailer']) {
      assert.equal(response.headers[name], undefined, name);
    }
    assert.equal(response.headers.connection, 'close');
    assert.equal(response.headers['x-kept'], 'yes');
    assert.equal(response.headers['x-request-id'], 'caller-id-7');
  });

  it('forwards over kept-alive upstream connections (an explicit keep-alive agent)', async () => {
    await fetch(`${gw.url}/warm`);
    let opened = 0;
    const count = () => opened++;
    upstream.server.on('connection', count);
    try {
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${gw.url}/sequential/${i}`)).status, 200);
    } finally {
      upstream.server.off('connection', count);
    }
    assert.equal(opened, 0);
    assert.equal(upstream.received.at(-1)!.headers.connection, 'keep-alive');
  });

  it('returns X-Request-Id on problem+json answers, the same as the body says', async () => {
    await gw.stop();
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
routes:
  - { name: only, match: { pathPrefix: /only }, upstream: ${upstream.url}, auth: { type: none } }
`);
    const kept = await fetch(`${gw.url}/elsewhere`, { headers: { 'x-request-id': 'caller-id-404' } });
    assert.equal(kept.status, 404);
    assert.equal(kept.headers.get('content-type'), 'application/problem+json');
    assert.equal(kept.headers.get('x-request-id'), 'caller-id-404');
    assert.equal(((await kept.json()) as { requestId: string }).requestId, 'caller-id-404');
    const generated = await fetch(`${gw.url}/elsewhere`);
    const id = generated.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(((await generated.json()) as { requestId: string }).requestId, id);
  });
});
