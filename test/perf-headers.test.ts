/**
 * The hot-path forms of header hygiene (RFC 9110 §7.6.1): flat name/value lists built in one pass,
 * dropping exactly what must not cross the gateway and adding exactly what the gateway owns.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { callerResponseHeaders, upstreamRequestHeaders, type Forwarding } from '../src/proxy/headers.js';

const upstreamAnswer = (): string[] => [
  'Content-Type',
  'application/json',
  'Content-Length',
  '1024',
  'Set-Cookie',
  'a=1',
  'Set-Cookie',
  'b=2',
  'Connection',
  'keep-alive, X-Hop',
  'Keep-Alive',
  'timeout=5',
  'X-Hop',
  'for this hop only',
  'X-Request-Id',
  'the-upstream-id',
  'X-End-To-End',
  'kept',
];

const pairs = (list: readonly string[]): Array<[string, string]> =>
  list.flatMap((_, i) => (i % 2 === 0 ? [[list[i]!, list[i + 1]!] as [string, string]] : []));

test('callerResponseHeaders drops hop-by-hop headers, those named in Connection and the upstream request id', () => {
  const raw = upstreamAnswer();
  assert.deepEqual(pairs(callerResponseHeaders(raw, 'ours')), [
    ['Content-Type', 'application/json'],
    ['Content-Length', '1024'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
    ['X-End-To-End', 'kept'],
    ['x-request-id', 'ours'],
  ]);
  assert.deepEqual(raw, upstreamAnswer(), 'the upstream response is left as it was');
});

test('callerResponseHeaders with the usual Connection: keep-alive drops only the fixed hop-by-hop set', () => {
  assert.deepEqual(pairs(callerResponseHeaders(['connection', 'Keep-Alive', 'keep-alive', 'timeout=5', 'x-keep', '1'], 'id')), [
    ['x-keep', '1'],
    ['x-request-id', 'id'],
  ]);
});

test('callerResponseHeaders passes one Content-Length of a repeated pair on, never two', () => {
  const out = pairs(callerResponseHeaders(['Content-Length', '2', 'content-length', '2'], 'id'));
  assert.deepEqual(
    out.filter(([name]) => name.toLowerCase() === 'content-length'),
    [['Content-Length', '2']],
  );
});

const forwarding = (overrides: Partial<Forwarding> = {}): Forwarding => ({
  upstreamHost: 'upstream.internal:8443',
  requestId: 'req-1',
  remoteAddress: '10.0.0.7',
  proto: 'http',
  host: 'gateway.local',
  accessHeaders: new Set(['x-api-key', 'x-other-route-key']),
  authorization: 'Bearer fresh',
  bodyless: true,
  ...overrides,
});

/** The caller's lines as Node's rawHeaders has them, from a headers object (one line per value). */
const lines = (headers: IncomingHttpHeaders): string[] =>
  Object.entries(headers).flatMap(([name, value]) => (Array.isArray(value) ? value.flatMap((v) => [name, v]) : [name, String(value)]));
const build = (headers: IncomingHttpHeaders, fw: Forwarding) => upstreamRequestHeaders(headers, lines(headers), fw);

test('upstreamRequestHeaders replaces what the gateway owns and drops what is for this hop only', () => {
  const headers: IncomingHttpHeaders = {
    host: 'gateway.local',
    authorization: 'Bearer the-callers',
    'x-api-key': 'the-callers-key',
    'x-other-route-key': 'a-key-for-another-route',
    connection: 'keep-alive, x-private',
    'x-private': 'hop',
    te: 'trailers',
    expect: '100-continue',
    'x-request-id': 'callers-id',
    'x-forwarded-for': '192.0.2.1',
    'x-forwarded-proto': 'https',
    accept: 'application/json',
  };
  const before = structuredClone(headers);
  assert.deepEqual(pairs(build(headers, forwarding())), [
    ['accept', 'application/json'],
    ['host', 'upstream.internal:8443'],
    ['x-forwarded-for', '192.0.2.1, 10.0.0.7'],
    ['x-forwarded-proto', 'http'],
    ['x-forwarded-host', 'gateway.local'],
    ['x-request-id', 'req-1'],
    ['authorization', 'Bearer fresh'],
  ]);
  assert.deepEqual(headers, before, "the caller's headers are left as they were, for a replay");
});

test('upstreamRequestHeaders keeps the body framing even when Connection names it', () => {
  // Transfer-Encoding never goes in the list: the client library chunks a body of unknown length
  // itself (core-headers checks the wire), and would refuse the header.
  const headers: IncomingHttpHeaders = { connection: 'content-length, transfer-encoding', 'transfer-encoding': 'chunked' };
  const out = pairs(build(headers, forwarding({ bodyless: false })));
  assert.equal(
    out.find(([name]) => name === 'transfer-encoding' || name === 'content-length'),
    undefined,
  );
  const sized = pairs(build({ connection: 'content-length', 'content-length': '5' }, forwarding({ bodyless: false })));
  assert.deepEqual(
    sized.find(([name]) => name === 'content-length'),
    ['content-length', '5'],
  );
});

test("upstreamRequestHeaders leaves a request without a body without Content-Length, even the caller's 0: undici frames it", () => {
  // undici takes the list's Content-Length as the body's length and refuses a second one; given no
  // body it writes `content-length: 0` itself where the method expects content (core-request-framing).
  for (const headers of [{}, { 'content-length': '0' }] satisfies IncomingHttpHeaders[]) {
    assert.equal(
      pairs(build(headers, forwarding({ bodyless: true }))).find(([name]) => name === 'content-length'),
      undefined,
    );
  }
});

test('upstreamRequestHeaders sends no Authorization on a route without a connection', () => {
  const out = pairs(build({ authorization: 'Bearer the-callers' }, forwarding({ authorization: undefined })));
  assert.equal(
    out.find(([name]) => name === 'authorization'),
    undefined,
  );
});

// Regression: Node's joined headers object kept only the first of a repeated User-Agent (and
// Referer, Content-Type...), and lower-cased every name; nginx passes each line as it came.
test('upstreamRequestHeaders passes each caller line on with its case, in order, repeats kept', () => {
  const raw = ['User-Agent', 'first', 'user-agent', 'second', 'Cookie', 'a=1', 'Cookie', 'b=2', 'X-Mixed-Case', 'v'];
  const headers: IncomingHttpHeaders = { 'user-agent': 'first', cookie: 'a=1; b=2', 'x-mixed-case': 'v' };
  const out = pairs(upstreamRequestHeaders(headers, raw, forwarding({ authorization: undefined }))).slice(0, 5);
  assert.deepEqual(out, [
    ['User-Agent', 'first'],
    ['user-agent', 'second'],
    ['Cookie', 'a=1'],
    ['Cookie', 'b=2'],
    ['X-Mixed-Case', 'v'],
  ]);
});
