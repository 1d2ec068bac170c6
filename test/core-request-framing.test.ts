/**
 * A request's body framing through the gateway, for every method: no body at all, `Content-Length:
 * 0` (what fetch, browsers and `curl -d ''` send for a POST without data), an empty chunked body,
 * and bodies of both framings. Each reaches the upstream once, framed exactly once, on a token route
 * (whose small bodies are buffered for a 401 replay) and on an `auth: none` route (whose bodies
 * stream). undici frames a request without a body itself: `content-length: 0` where the method
 * expects content (RFC 9110 §8.6), nothing where it does not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { rawRequest } from './support/raw.js';
import { startServer, startTokenEndpoint, tokenIssuer, type Recorded, type TestServer } from './support/servers.js';

/** The methods undici sends `content-length: 0` for when they carry no body. */
const EXPECTS_CONTENT = new Set(['POST', 'PUT', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH']);
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'QUERY', 'PROPFIND', 'PROPPATCH', 'LOCK'];

/** Request shapes without a body: the framing lines and the bytes after the head. */
const EMPTY_SHAPES = {
  absent: { head: '', body: '' },
  'content-length 0': { head: 'Content-Length: 0\r\n', body: '' },
  'content-length 00': { head: 'Content-Length: 00\r\n', body: '' },
  'empty chunked': { head: 'Transfer-Encoding: chunked\r\n', body: '0\r\n\r\n' },
} as const;

const BODY_SHAPES = {
  sized: { head: 'Content-Length: 5\r\n', body: 'hello' },
  chunked: { head: 'Transfer-Encoding: chunked\r\n', body: '2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n' },
} as const;

function rawValues(recorded: Recorded, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < recorded.rawHeaders.length; i += 2) {
    if (recorded.rawHeaders[i]!.toLowerCase() === name) out.push(recorded.rawHeaders[i + 1]!);
  }
  return out;
}

describe('request framing for every method', () => {
  let tokens: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;
  let host: string;

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    // /replay/... answers its first request 401 invalid_token, so the gateway fetches a token and replays it.
    const refused = new Set<string>();
    upstream = await startServer((req, res) => {
      if (req.url!.startsWith('/token/replay/') && !refused.has(req.url!)) {
        refused.add(req.url!);
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: token-endpoint-secret } }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - name: token
    match: { pathPrefix: /token }
    upstream: ${upstream.url}
    auth: { connection: c }
  - name: open
    match: { pathPrefix: /open }
    upstream: ${upstream.url}
    auth: { type: none }
`);
    host = new URL(gw.url).host;
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await tokens.close();
  });

  /** Sends one request on its own connection; returns the caller's status and what the upstream got. */
  async function send(method: string, path: string, shape: { head: string; body: string }): Promise<{ status: number; got: Recorded[] }> {
    const response = await rawRequest(
      gw.url,
      `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${shape.head}\r\n${shape.body}`,
    );
    return { status: response.status, got: upstream.received.filter((r) => r.url === path) };
  }

  for (const route of ['token', 'open']) {
    // TRACE on a token route is refused (see below): its echo would show the injected token.
    for (const method of METHODS.filter((m) => route === 'open' || m !== 'TRACE')) {
      for (const [name, shape] of Object.entries(EMPTY_SHAPES)) {
        it(`${route} route: ${method} with ${name} reaches the upstream once, framed once and without a body`, async () => {
          const path = `/${route}/${method.toLowerCase()}/${name.replace(/ /g, '-')}`;
          const { status, got } = await send(method, path, shape);
          assert.equal(status, 200, `the caller got ${status}`);
          assert.equal(got.length, 1);
          const [recorded] = got;
          assert.equal(recorded!.method, method);
          assert.equal(recorded!.body.length, 0);
          assert.deepEqual(rawValues(recorded!, 'transfer-encoding'), []);
          assert.deepEqual(rawValues(recorded!, 'content-length'), EXPECTS_CONTENT.has(method) ? ['0'] : []);
          if (route === 'token') assert.match(recorded!.headers.authorization ?? '', /^Bearer tok-/);
        });
      }
    }
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'GET']) {
      for (const [name, shape] of Object.entries(BODY_SHAPES)) {
        it(`${route} route: ${method} with a ${name} body reaches the upstream with that body, framed once`, async () => {
          const path = `/${route}/${method.toLowerCase()}/${name}-body`;
          const { status, got } = await send(method, path, shape);
          assert.equal(status, 200, `the caller got ${status}`);
          assert.equal(got.length, 1);
          assert.equal(got[0]!.body.toString(), 'hello');
          const framing = [...rawValues(got[0]!, 'content-length'), ...rawValues(got[0]!, 'transfer-encoding')];
          assert.equal(framing.length, 1, `framed as ${framing.join(' and ')}`);
        });
      }
    }
  }

  for (const route of ['token', 'open']) {
    for (const [name, shape] of [
      ['a sized body', BODY_SHAPES.sized],
      ['a chunked body', BODY_SHAPES.chunked],
      ['Content-Length: 0', EMPTY_SHAPES['content-length 0']],
    ] as const) {
      it(`${route} route: a POST with Expect: 100-continue and ${name} is answered once, its body forwarded without Expect`, async () => {
        const path = `/${route}/expect/${name.replace(/[ :]+/g, '-')}`;
        const response = await rawRequest(
          gw.url,
          `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\nExpect: 100-continue\r\n${shape.head}\r\n${shape.body}`,
        );
        // Node answers the 100 itself; the final answer follows.
        assert.match(response.text, /HTTP\/1\.1 200 OK/);
        const got = upstream.received.filter((r) => r.url === path);
        assert.equal(got.length, 1);
        assert.equal(got[0]!.body.toString(), shape.body === '' ? '' : 'hello');
        assert.equal(got[0]!.headers.expect, undefined);
      });
    }
  }

  it('token route: TRACE is refused 400 BAD_REQUEST and never sent, so no upstream echo can show the injected token (RFC 9110 §9.3.8)', async () => {
    const path = '/token/trace/refused';
    const response = await rawRequest(gw.url, `TRACE ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(response.status, 400);
    assert.match(response.text, /"code":"BAD_REQUEST"/);
    assert.match(response.text, /TRACE is not sent on a route that injects credentials/);
    assert.equal(upstream.received.filter((r) => r.url === path).length, 0);
  });

  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    it(`token route: a ${method} with Content-Length: 0 refused 401 invalid_token is replayed with a new token, framed as the first`, async () => {
      const path = `/token/replay/${method.toLowerCase()}`;
      const { status, got } = await send(method, path, EMPTY_SHAPES['content-length 0']);
      assert.equal(status, 200, `the caller got ${status}`);
      assert.equal(got.length, 2);
      assert.notEqual(got[0]!.headers.authorization, got[1]!.headers.authorization);
      for (const recorded of got) {
        assert.equal(recorded.body.length, 0);
        assert.deepEqual(rawValues(recorded, 'content-length'), EXPECTS_CONTENT.has(method) ? ['0'] : []);
      }
    });
  }
});
