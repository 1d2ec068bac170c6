/** Routing and the forwarded request target: order, prefixes, methods, host, paths, query strings. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { normalizePath } from '../src/routing/path.js';
import { prefixMatches } from '../src/routing/router.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { rawRequest } from './support/raw.js';
import { startServer, type TestServer } from './support/servers.js';

interface Problem {
  code: string;
  status: number;
}

describe('routing', () => {
  let first: TestServer;
  let second: TestServer;
  let bystander: TestServer;
  let gw: TestGateway;
  let host: string;

  const named = (name: string) => startServer((_req, res) => res.end(name));

  before(async () => {
    first = await named('first');
    second = await named('second');
    bystander = await named('bystander');
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
routes:
  - name: partner-read
    match: { pathPrefix: /partner, methods: [get, HEAD] }
    upstream: ${first.url}/v2
    stripPrefix: true
    auth: { type: none }
  - name: partner-write
    match: { pathPrefix: /partner/ }
    upstream: ${second.url}
    auth: { type: none }
  - name: by-host
    match: { pathPrefix: /hosted, host: API.Internal }
    upstream: ${first.url}
    auth: { type: none }
  - name: dup-first
    match: { pathPrefix: /dup }
    upstream: ${first.url}
    auth: { type: none }
  - name: dup-second
    match: { pathPrefix: /dup }
    upstream: ${second.url}
    auth: { type: none }
  - name: base-no-strip
    match: { pathPrefix: /keep }
    upstream: ${second.url}/base/
    auth: { type: none }
`);
    host = new URL(gw.url).host;
  });

  after(async () => {
    await gw.stop();
    await Promise.all([first.close(), second.close(), bystander.close()]);
  });

  const get = (path: string, init?: RequestInit) => fetch(`${gw.url}${path}`, init);
  const raw = (requestLine: string, hostHeader = host) =>
    rawRequest(gw.url, `${requestLine}\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);

  it('tries routes in order; the first match wins', async () => {
    const response = await get('/dup/x');
    assert.equal(await response.text(), 'first');
    assert.equal(first.received.at(-1)!.url, '/dup/x');
  });

  it('matches pathPrefix on segment boundaries: /partner and /partner/..., never /partnership', async () => {
    assert.equal(await (await get('/partner')).text(), 'first');
    assert.equal(await (await get('/partner/orders')).text(), 'first');
    const response = await get('/partnership');
    assert.equal(response.status, 404);
    assert.equal(((await response.json()) as Problem).code, 'ROUTE_NOT_FOUND');
  });

  it("honours a route's methods, falling through to the next route", async () => {
    assert.equal(await (await get('/partner/o', { method: 'POST', body: 'x' })).text(), 'second');
    assert.equal(second.received.at(-1)!.method, 'POST');
    const head = await get('/partner/o', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(first.received.at(-1)!.method, 'HEAD');
  });

  it('compares host with the Host header, case-insensitively and without the port', async () => {
    assert.equal((await raw('GET /hosted/a HTTP/1.1', 'api.internal:8443')).body, 'first');
    assert.equal((await raw('GET /hosted/a HTTP/1.1', 'API.INTERNAL')).body, 'first');
    const other = await raw('GET /hosted/a HTTP/1.1', 'other.internal');
    assert.equal(other.status, 404);
    assert.equal((JSON.parse(other.body) as Problem).code, 'ROUTE_NOT_FOUND');
  });

  it("strips the prefix and joins the rest to the upstream's base path", async () => {
    await get('/partner/orders/1?x=2');
    assert.equal(first.received.at(-1)!.url, '/v2/orders/1?x=2');
    await get('/partner');
    assert.equal(first.received.at(-1)!.url, '/v2');
    await get('/partner/');
    assert.equal(first.received.at(-1)!.url, '/v2/');
  });

  it("keeps the whole path under the upstream's base path without stripPrefix", async () => {
    await get('/keep/a/b?c');
    assert.equal(second.received.at(-1)!.url, '/base/keep/a/b?c');
  });

  it('forwards the query string byte for byte', async () => {
    const query = "?a='quoted'&pipe=a|b&brace={x}&tilde=%7E&raw=~&a=b=c&path=//x/../y&pct=%zz&plus=a+b&empty=&&semi=1;2&q=?&h=%23";
    const response = await raw(`GET /partner/q${query} HTTP/1.1`);
    assert.equal(response.status, 200);
    assert.equal(first.received.at(-1)!.url, `/v2/q${query}`);
  });

  it('matches and forwards the normalised path, so no spelling climbs out of a prefix', async () => {
    for (const path of ['/keep/../dup/x', '/keep/%2E%2e/dup/x', '/keep/./a/.././../dup/x']) {
      const response = await raw(`GET ${path} HTTP/1.1`);
      assert.equal(response.body, 'first', path);
      assert.equal(first.received.at(-1)!.url, '/dup/x', path);
    }
    for (const path of ['/keep/../../etc/passwd', '/keep/..%2f..%2fetc', '/keep/a%5c..']) {
      const response = await raw(`GET ${path} HTTP/1.1`);
      assert.equal(response.status, 400, path);
      assert.equal((JSON.parse(response.body) as Problem).code, 'BAD_REQUEST', path);
    }
  });

  it('never forwards an absolute-form request to the host it names', async () => {
    const before = first.received.length;
    const unmatched = await raw(`GET ${bystander.url}/elsewhere HTTP/1.1`);
    assert.equal(unmatched.status, 404);
    const matched = await raw(`GET ${bystander.url}/dup/abs?q=1 HTTP/1.1`);
    assert.equal(matched.status, 200);
    assert.equal(matched.body, 'first');
    assert.equal(first.received.length, before + 1);
    assert.equal(first.received.at(-1)!.url, '/dup/abs?q=1');
    assert.equal(first.received.at(-1)!.headers['x-forwarded-host'], new URL(bystander.url).host);
    const other = await raw('GET http://other-host/x HTTP/1.1');
    assert.equal(other.status, 404);
    assert.equal(bystander.received.length, 0);
  });

  it('answers an unmatched request itself with problem+json', async () => {
    const response = await get('/nowhere', { method: 'DELETE' });
    assert.equal(response.status, 404);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.code, 'ROUTE_NOT_FOUND');
    assert.equal(body.status, 404);
    for (const field of ['type', 'title', 'detail', 'requestId']) assert.equal(typeof body[field], 'string', field);
  });
});

describe('path normalisation (properties)', () => {
  // Segments built from the characters that matter: dots (also encoded), slashes, letters.
  const segment = fc.constantFrom('', '.', '..', '%2e', '%2E%2e', '.a', 'a', 'b', 'a.b', '...', '%41');
  const path = fc.array(segment, { maxLength: 8 }).map((segments) => `/${segments.join('/')}`);

  it('leaves no dot segment or empty segment, and is idempotent', () => {
    fc.assert(
      fc.property(path, (raw) => {
        const normal = normalizePath(raw);
        if (normal === undefined) return;
        assert.ok(normal.startsWith('/'));
        const inner = normal.slice(1, normal.endsWith('/') && normal.length > 1 ? -1 : undefined);
        for (const part of inner === '' ? [] : inner.split('/')) {
          const decoded = part.replace(/%2e/gi, '.');
          assert.ok(part !== '' && decoded !== '.' && decoded !== '..', `${raw} -> ${normal}`);
        }
        assert.equal(normalizePath(normal), normal);
      }),
    );
  });

  it('never lets a path that climbs out of a prefix match it', () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
        const raw = `/partner/${segments.join('/')}`;
        const normal = normalizePath(raw);
        if (normal === undefined || !prefixMatches('/partner', normal)) return;
        // Resolving the dot segments by hand must keep the path under /partner too.
        const stack: string[] = [];
        for (const part of raw.split('/').slice(1)) {
          const decoded = part.replace(/%2e/gi, '.');
          if (decoded === '..') stack.pop();
          else if (decoded !== '.' && decoded !== '') stack.push(part);
        }
        assert.equal(stack[0], 'partner', `${raw} -> ${normal}`);
      }),
    );
  });
});
