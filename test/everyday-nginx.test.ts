/**
 * Differential suite: tokengate against Debian's nginx as a plain reverse proxy in front of the same
 * recording upstream. Generated requests go through both (over raw keep-alive sockets, so the test
 * owns the framing) and what the upstream received is compared; then generated upstream answers
 * are compared as the caller receives them. What may differ, and why, is docs/http-semantics.md:
 * the normalisations below are its rules, and each intended difference from nginx also has a test
 * of its own, named after its row there ("documented difference: ...").
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { normalizePath, splitTarget } from '../src/routing/path.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startNginx, type Nginx } from './support/nginx.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { requireProgram } from './support/programs.js';
import { startRecordingUpstream, OK, type Received, type RecordingUpstream, type Reply } from './support/recording-upstream.js';
import { values, WireClient, type Answer, type HeaderLine } from './support/wire.js';

/** Fixed, so a failure is reproducible; DIFF_SEED=<n> tries another. */
const SEED = Number(process.env.DIFF_SEED ?? 20_261_204);
const CLIENT_SECRET = 'differential-secret-0123456789';
/** The Hosts that select the route with a token and the one with a DPoP-bound token; any other takes the route without one. */
const TOKEN_HOST = 'token.test';
const DPOP_HOST = 'dpop.test';
/**
 * The access keys every caller presents: the gateway-wide one, and the DPoP route's own (a route
 * with its own policy). tokengate removes both headers on every route; nginx passes them on.
 */
const ACCESS_LINES = ['X-Gateway-Key: gateway-key-0123456789', 'X-Route-Key: route-key-0123456789'];
/** The request line, then the access keys: a request as a caller of the gateway sends it. */
const withAccessKeys = (head: string) => head.replace('\r\n', `\r\n${ACCESS_LINES.join('\r\n')}\r\n`);
/** A proxy that has not answered a case by then has hung on it. */
const CASE_DEADLINE_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// Generated requests

interface GeneratedRequest {
  method: string;
  target: string;
  host: string;
  headers: HeaderLine[];
  body:
    | { shape: 'absent' }
    | { shape: 'zero' }
    | { shape: 'length'; bytes: Buffer; expectContinue: boolean }
    | { shape: 'chunked'; bytes: Buffer; cuts: number[]; trailers: HeaderLine[] };
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND', 'REPORT'] as const;

const SEGMENTS = [
  'a',
  'B',
  'orders',
  '42',
  '%41',
  '%7E',
  '%20',
  '~x',
  'caf%C3%A9',
  'a;p=1',
  '@',
  ':',
  "!$&'()*+,=",
  '.',
  '..',
  '%2e',
  '',
  'x.y',
];
const QUERIES = ['', '?', '?a=1&b=2', '?q=%2F%3F%23', '?x', '?a=b=c', '?%zz', '?path=/a/../b', '?e=%00', '?c=caf%C3%A9', '?k=v&k=w'];
const path = fc
  .array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 5 })
  .map((segments) => `/orders/${segments.join('/')}`)
  // Paths that climb above the root are 400 at tokengate (security.md) and compared on their own.
  .filter((p) => normalizePath(p) !== undefined);
const target = fc.tuple(path, fc.constantFrom(...QUERIES)).map(([p, q]) => p + q);

const TCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^`|~";
/** Names nginx and tokengate both treat as ordinary end-to-end fields, in mixed case. */
const fieldName = fc.oneof(
  fc.constantFrom(
    'Accept',
    'accept-language',
    'User-Agent',
    'Referer',
    'If-None-Match',
    'Content-Type',
    'X-Custom',
    'x-custom',
    'X-CUSTOM',
  ),
  fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: 12 }).map((name) => `X-${name}`),
);
const VCHAR = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c));
/** RFC 9110 §5.5: visible characters, inner spaces and tabs, obs-text (bytes 0x80-0xff, sent as latin1). */
const fieldValue = fc.oneof(
  fc.constant(''),
  fc
    .array(
      fc.oneof(
        { weight: 6, arbitrary: VCHAR },
        fc.constant(' '),
        fc.constant('\t'),
        fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
      ),
      {
        minLength: 1,
        maxLength: 40,
      },
    )
    .map((chars) => chars.join('').trim()),
);
const cookie = fc
  .array(
    fc.tuple(
      fc.constantFrom('session', 'theme', 'a', 'B', 'tokengate_session', '__Host-tokengate_session'),
      fc.string({ unit: fc.constantFrom(...'abcXYZ019-_'), maxLength: 8 }),
    ),
    {
      minLength: 1,
      maxLength: 3,
    },
  )
  .map((pairs): HeaderLine => ['Cookie', pairs.map(([k, v]) => `${k}=${v}`).join('; ')]);
/** Lines a caller may send that one or both proxies treat specially (each covered by a normalisation below). */
const special = fc.constantFrom<HeaderLine>(
  ['Authorization', 'Bearer caller-own-token'],
  ['authorization', 'Basic dXNlcjpwYXNz'],
  ['Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0'],
  ['X-Request-Id', 'caller-request-id-1'],
  ['X-Request-Id', 'not a valid id!'],
  ['X-Forwarded-For', '203.0.113.7'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Forwarded-Host', 'spoofed.example'],
  ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
  ['Keep-Alive', 'timeout=5'],
  ['TE', 'trailers'],
  ['Trailer', 'X-Checksum'],
  ['Upgrade-Insecure-Requests', '1'],
  ['Connection', 'keep-alive, X-Hop'],
  ['X-Hop', 'for the next hop only'],
  ['X_Underscore', 'u'],
  ['DPoP', 'caller.own.proof'],
);
const headerLines = fc.array(
  fc.oneof({ weight: 5, arbitrary: fc.tuple(fieldName, fieldValue) }, { weight: 1, arbitrary: cookie }, { weight: 2, arbitrary: special }),
  { maxLength: 8 },
);

/** One MiB, the same bytes every run. */
const MIB = Buffer.alloc(1 << 20, 0);
for (let i = 0; i < MIB.length; i++) MIB[i] = (i * 131 + (i >> 10)) & 0xff;
// A failing case names it instead of printing a million numbers.
Object.defineProperty(MIB, fc.toStringMethod, { value: () => '<1 MiB>' });

const bodyBytes = fc.oneof(
  { weight: 12, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.constant(MIB) },
);
const trailerLines = fc.array(
  fc.tuple(fc.constantFrom('X-Checksum', 'x-trailer', 'Server-Timing'), fc.string({ unit: fc.constantFrom(...'abc123=;'), maxLength: 10 })),
  { maxLength: 2 },
);
const body: fc.Arbitrary<GeneratedRequest['body']> = fc.oneof(
  fc.constant({ shape: 'absent' as const }),
  fc.constant({ shape: 'zero' as const }),
  fc.record({ shape: fc.constant('length' as const), bytes: bodyBytes, expectContinue: fc.boolean() }),
  fc.record({
    shape: fc.constant('chunked' as const),
    bytes: bodyBytes,
    cuts: fc.array(fc.integer({ min: 1, max: 4096 }), { maxLength: 4 }),
    trailers: trailerLines,
  }),
);

const request: fc.Arbitrary<GeneratedRequest> = fc.record({
  method: fc.constantFrom(...METHODS),
  target,
  host: fc.constantFrom(TOKEN_HOST, DPOP_HOST, 'plain.test', 'Plain.Test:8080', 'localhost'),
  headers: headerLines,
  body,
});

/** A chunked body (RFC 9112 §7.1): chunks of the sizes in `cuts`, the rest in one, then the trailer section. */
function chunked(bytes: Buffer, cuts: number[], trailers: HeaderLine[]): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    const end = Math.min(bytes.length, at + cut);
    if (end > at) parts.push(Buffer.from(`${(end - at).toString(16)}\r\n`), bytes.subarray(at, end), Buffer.from('\r\n'));
    at = end;
  }
  parts.push(Buffer.from(`0\r\n${trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, 'latin1'));
  return Buffer.concat(parts);
}

/** The request's bytes on the wire: head, and the body sent after it (after a 100 when it expects one). */
function encode(r: GeneratedRequest): { head: Buffer; body: Buffer; expectContinue: boolean } {
  const lines = [`${r.method} ${r.target} HTTP/1.1`, `Host: ${r.host}`, ...ACCESS_LINES, ...r.headers.map(([n, v]) => `${n}: ${v}`)];
  let payload: Buffer = Buffer.alloc(0);
  let expectContinue = false;
  if (r.body.shape === 'zero') lines.push('Content-Length: 0');
  if (r.body.shape === 'length') {
    lines.push(`Content-Length: ${r.body.bytes.length}`);
    if (r.body.expectContinue) lines.push('Expect: 100-continue');
    expectContinue = r.body.expectContinue;
    payload = r.body.bytes;
  } else if (r.body.shape === 'chunked') {
    lines.push('Transfer-Encoding: chunked');
    payload = chunked(r.body.bytes, r.body.cuts, r.body.trailers);
  }
  return { head: Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body: payload, expectContinue };
}

// ---------------------------------------------------------------------------------------------
// The allowed differences (docs/http-semantics.md), applied to what the upstream received

const lower = (name: string) => name.toLowerCase();

/** RFC 9110 §7.6.1: hop-by-hop fields; both proxies set their own Connection on their hop. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Names the caller listed in its Connection header (RFC 9110 §7.6.1): for its hop only. */
function namedInConnection(sent: readonly HeaderLine[]): Set<string> {
  const named = new Set<string>();
  for (const value of values(sent, 'connection')) for (const token of value.split(',')) named.add(lower(token.trim()));
  return named;
}

/**
 * nginx drops a field whose name has a character other than a letter, a digit or `-` (its
 * `ignore_invalid_headers`, on by default; `_` too, `underscores_in_headers` being off); tokengate
 * passes every name RFC 9110 §5.1 allows (a token: also ``!#$%&'*+.^_`|~``).
 */
const nginxInvalidName = (name: string) => /[^a-z0-9-]/i.test(name);

/**
 * The fields either proxy owns or may drop, removed before the comparison; each is checked on its
 * own in checkOwnedFields. Content-Length goes with the framing, which may change (chunked ↔ length)
 * when the bytes stay the same.
 */
function comparable(received: Received, sent: readonly HeaderLine[]): HeaderLine[] {
  const named = namedInConnection(sent);
  const owned = new Set([
    'host',
    'x-forwarded-for',
    'x-forwarded-proto',
    'x-forwarded-host',
    'x-request-id',
    'authorization',
    'dpop',
    'proxy-authorization',
    'content-length',
    'expect',
    'x-gateway-key',
    'x-route-key',
  ]);
  return received.headers
    .filter(([name]) => {
      const n = lower(name);
      if (nginxInvalidName(n)) return false;
      return !owned.has(n) && !HOP_BY_HOP.has(n) && !named.has(n);
    })
    .flatMap(([name, value]): HeaderLine[] => {
      if (lower(name) !== 'cookie') return [[name, value]];
      const kept = withoutSessionCookie(value);
      return kept === '' ? [] : [[name, kept]];
    });
}

/** The admin console's session cookies, which tokengate removes from every Cookie line (security.md). */
const SESSION_COOKIES = new Set(['tokengate_session', '__Host-tokengate_session']);

function withoutSessionCookie(line: string): string {
  const pairs = line.split(';').map((pair) => pair.trim());
  return pairs.filter((pair) => pair !== '' && !SESSION_COOKIES.has(pair.split('=')[0]!)).join('; ');
}

/**
 * Fields nginx takes at most once in a request, answering 400 to a second line (its
 * ngx_http_process_unique_header_line). RFC 9110 §5.3 allows repeating a list-based field (If-Match,
 * If-None-Match): tokengate passes each line on.
 */
const NGINX_UNIQUE = new Set([
  'if-modified-since',
  'if-unmodified-since',
  'if-match',
  'if-none-match',
  'if-range',
  'content-range',
  'authorization',
]);

function nginxRefusesRepeated(headers: readonly HeaderLine[]): string | undefined {
  const seen = new Set<string>();
  for (const [name] of headers) {
    const n = lower(name);
    if (NGINX_UNIQUE.has(n) && seen.has(n)) return n;
    seen.add(n);
  }
  return undefined;
}

/** The target as tokengate forwards it: the path normalised (RFC 3986 §5.2.4, security.md), the query untouched. */
function normalisedTarget(raw: string): string {
  const { path: p, query } = splitTarget(raw);
  return `${normalizePath(p) ?? '(refused)'}${query}`;
}

interface Recordings {
  nginx: Received | undefined;
  tokengate: Received | undefined;
}

/** The exact request and both recordings, for a case that differs. */
function report(what: string, sent: { head: Buffer; body: Buffer }, recordings: object): string {
  const show = (value: unknown): unknown =>
    Buffer.isBuffer(value)
      ? value.length > 512
        ? `<${value.length} bytes: ${value.subarray(0, 128).toString('latin1')}...>`
        : value.toString('latin1')
      : value;
  // Header lines as `Name: value`, bodies as latin1 text (cut short past 512 bytes).
  const json = (value: unknown) =>
    JSON.stringify(
      value,
      (_key, v: unknown) => {
        if (typeof v === 'object' && v !== null && (v as { type?: string }).type === 'Buffer')
          return show(Buffer.from((v as { data: number[] }).data));
        if (Array.isArray(v) && v.every((line) => Array.isArray(line) && line.length === 2 && typeof line[0] === 'string'))
          return (v as HeaderLine[]).map(([n, value]) => `${n}: ${value}`);
        return v;
      },
      2,
    );
  return [
    what,
    `request head: ${JSON.stringify(sent.head.toString('latin1'))}`,
    `request body: ${JSON.stringify(show(sent.body))}`,
    `recorded: ${json(recordings)}`,
  ].join('\n');
}

function checkOwnedFields(
  r: GeneratedRequest,
  rec: { nginx: Received; tokengate: Received },
  upstreamPort: number,
  fail: (what: string) => never,
): void {
  const tg = rec.tokengate.headers;
  const ng = rec.nginx.headers;
  const one = (headers: HeaderLine[], name: string) => {
    const all = values(headers, name);
    if (all.length !== 1) fail(`${name}: expected exactly one line, got ${JSON.stringify(all)}`);
    return all[0]!;
  };
  // Host: the upstream's own authority, through both.
  if (one(tg, 'host') !== `127.0.0.1:${upstreamPort}` || one(ng, 'host') !== `127.0.0.1:${upstreamPort}`) fail('Host');
  // X-Forwarded-*: the caller's Host, the scheme, the caller's address appended to its own list.
  for (const name of ['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for']) {
    if (one(tg, name) !== one(ng, name)) fail(name);
  }
  // X-Request-Id: tokengate sets exactly one, the caller's when well-formed; nginx passes the caller's.
  const requestId = one(tg, 'x-request-id');
  const callerIds = values(r.headers, 'x-request-id');
  if (callerIds.length === 1 && /^[\w.:@/+=-]{1,128}$/.test(callerIds[0]!) && requestId !== callerIds[0]) fail("the caller's X-Request-Id");
  // Authorization (and DPoP): what the route injects, nothing on the route without a connection;
  // never the caller's own.
  const injected = values(tg, 'authorization');
  const proofs = values(tg, 'dpop');
  if (r.host === TOKEN_HOST) {
    if (injected.length !== 1 || !/^Bearer \S+$/.test(injected[0]!) || injected[0] === 'Bearer caller-own-token')
      fail('injected Authorization');
    if (proofs.length !== 0) fail("the caller's DPoP");
  } else if (r.host === DPOP_HOST) {
    // RFC 9449 §4.2, §7.1: a proof of this request (method, URL without the query) for the bound token.
    if (injected.length !== 1 || !/^DPoP \S+$/.test(injected[0]!)) fail('injected DPoP Authorization');
    if (proofs.length !== 1) fail('one DPoP proof');
    const claims = JSON.parse(Buffer.from(proofs[0]!.split('.')[1] ?? '', 'base64url').toString('utf8')) as { htm?: string; htu?: string };
    const url = `http://127.0.0.1:${upstreamPort}${splitTarget(rec.tokengate.target).path}`;
    if (claims.htm !== r.method || claims.htu !== url) fail('DPoP proof claims');
  } else if (injected.length !== 0 || proofs.length !== 0) fail('Authorization or DPoP on a route without a connection');
  if (values(tg, 'proxy-authorization').length !== 0) fail("the caller's Proxy-Authorization");
  if (values(tg, 'x-gateway-key').length + values(tg, 'x-route-key').length !== 0) fail('an access key');
  if (values(ng, 'x-gateway-key').length !== 1) fail('nginx passes the access key on');
  if (values(tg, 'cookie').some((line) => line.split(';').some((pair) => SESSION_COOKIES.has(pair.trim().split('=')[0]!))))
    fail('the admin session cookie');
  // The caller's hop-by-hop fields and those it named in Connection never reach the upstream
  // (Connection and Transfer-Encoding there are tokengate's own, for its hop).
  const named = namedInConnection(r.headers);
  for (const [name] of tg) {
    const n = lower(name);
    if ((HOP_BY_HOP.has(n) && n !== 'connection' && n !== 'transfer-encoding') || named.has(n)) fail(`hop-by-hop ${name} forwarded`);
  }
}

async function exchange(
  client: WireClient,
  method: string,
  sent: { head: Buffer; body: Buffer; expectContinue: boolean },
  what: string,
): Promise<Answer> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} did not answer within ${CASE_DEADLINE_MS} ms`)), CASE_DEADLINE_MS);
  });
  try {
    return await Promise.race([client.send(method, sent.head, sent.body, sent.expectContinue), deadline]);
  } catch (error) {
    client.close();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Generated answers

interface GeneratedAnswer {
  method: 'GET' | 'HEAD';
  status: number;
  reason: string;
  headers: HeaderLine[];
  framing: 'length' | 'chunked' | 'close';
  body: Buffer;
  trailers: HeaderLine[];
  /** Body pieces and the pause before each (ms); [] writes the body at once. */
  slow: number[];
  /** An interim answer before the final one. */
  interim: 'none' | '102' | '103';
}

const STATUSES = [200, 201, 202, 203, 204, 206, 301, 302, 304, 307, 400, 403, 404, 409, 410, 418, 422, 429, 500, 502, 503, 504];
const REASONS: Record<number, string> = { 200: 'OK', 404: 'Not Found', 500: 'Internal Server Error' };
/** Fields an answer carries at most once (RFC 9110 §5.3: a singleton field must not be repeated). */
const singletonFields = fc.uniqueArray(
  fc.tuple(fc.constantFrom('Content-Type', 'ETag', 'Location', 'Last-Modified', 'Content-Language'), fieldValue),
  { selector: ([name]) => name, maxLength: 3 },
);
/** Fields that may come in several lines: lists, and Set-Cookie (RFC 6265 §3). */
const repeatableFields = fc.array(
  fc.oneof(
    fc.tuple(
      fc.constantFrom('Set-Cookie', 'set-cookie'),
      fc.constantFrom('a=1; Path=/', 'b=2; HttpOnly', 'c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT'),
    ),
    fc.tuple(fc.constantFrom('Cache-Control', 'Vary', 'vary', 'Link', 'X-Dup', 'x-dup', 'WWW-Authenticate'), fieldValue),
    fc.tuple(
      fieldName.filter((name) => !/^(content-type|referer|user-agent)$/i.test(name)),
      fieldValue,
    ),
    // Lines for the upstream's own hop, and its own request id (each covered by a normalisation below).
    fc.constantFrom<HeaderLine>(
      ['Connection', 'X-Private'],
      ['X-Private', 'for the gateway only'],
      ['Keep-Alive', 'timeout=9'],
      ['Proxy-Authenticate', 'Basic realm="up"'],
      ['Proxy-Connection', 'keep-alive'],
      ['Upgrade', 'h2c'],
      ['X-Request-Id', 'the-upstream-id'],
    ),
  ),
  { maxLength: 6 },
);
const responseHeaders = fc.tuple(singletonFields, repeatableFields).map(([once, many]) => [...once, ...many]);
const answer: fc.Arbitrary<GeneratedAnswer> = fc
  .record({
    method: fc.constantFrom('GET' as const, 'HEAD' as const),
    // 204 and 304 (no body, whatever the framing says) more often than the rest.
    status: fc.oneof({ weight: 1, arbitrary: fc.constantFrom(204, 304) }, { weight: 6, arbitrary: fc.constantFrom(...STATUSES) }),
    customReason: fc.boolean(),
    headers: responseHeaders,
    framing: fc.constantFrom('length' as const, 'chunked' as const, 'close' as const),
    body: fc.uint8Array({ maxLength: 4000 }).map((bytes) => Buffer.from(bytes)),
    trailers: trailerLines,
    slow: fc.oneof(
      { weight: 3, arbitrary: fc.constant<number[]>([]) },
      { weight: 1, arbitrary: fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 1, maxLength: 3 }) },
    ),
    interim: fc.constantFrom('none' as const, 'none' as const, '102' as const, '103' as const),
  })
  .map((a) => ({
    ...a,
    reason: a.customReason ? 'Whatever It Likes' : (REASONS[a.status] ?? 'Status'),
    // RFC 9110 §6.4.1: no body for HEAD, 204 or 304, whatever the framing says.
    body: a.method === 'HEAD' || a.status === 204 || a.status === 304 ? Buffer.alloc(0) : a.body,
    // A 401 with invalid_token would be replayed with a new token (resilience.md), not compared here.
    headers: a.headers,
  }));

const EARLY_HINTS_LINK = '</style.css>; rel=preload; as=style';

/** RFC 9110 §6.4.1: no body for HEAD, 204 or 304, whatever the framing says. */
const bodiless = (a: GeneratedAnswer) => a.method === 'HEAD' || a.status === 204 || a.status === 304;

/** The upstream's bytes for an answer; the body cut into the slow pieces with their pauses. */
function script(a: GeneratedAnswer, withInterim: boolean): Reply {
  const head = [`HTTP/1.1 ${a.status} ${a.reason}`, ...a.headers.map(([n, v]) => `${n}: ${v}`)];
  const declaredLength = a.method === 'HEAD' ? 1234 : a.body.length;
  if (a.framing === 'length' && a.status !== 204) head.push(`Content-Length: ${a.status === 304 ? 0 : declaredLength}`);
  if (a.framing === 'chunked' && !bodiless(a))
    head.push('Transfer-Encoding: chunked', ...(a.trailers.length > 0 ? [`Trailer: ${a.trailers.map(([n]) => n).join(', ')}`] : []));
  if (a.framing === 'close' && !bodiless(a)) head.push('Connection: close');
  const pieces: Reply['pieces'] = [];
  if (withInterim && a.interim === '103') pieces.push(`HTTP/1.1 103 Early Hints\r\nLink: ${EARLY_HINTS_LINK}\r\n\r\n`);
  if (withInterim && a.interim === '102') pieces.push('HTTP/1.1 102 Processing\r\n\r\n');
  pieces.push(Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'));
  if (!bodiless(a)) {
    const parts: Buffer[] = [];
    const count = a.slow.length + 1;
    const size = Math.ceil(a.body.length / count);
    for (let i = 0; i < count; i++) parts.push(a.body.subarray(i * size, (i + 1) * size));
    parts.forEach((part, i) => {
      if (i > 0) pieces.push(a.slow[i - 1]!);
      if (a.framing === 'chunked') {
        if (part.length > 0) pieces.push(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
      } else pieces.push(part);
    });
    if (a.framing === 'chunked') pieces.push(Buffer.from(`0\r\n${a.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, 'latin1'));
  }
  return { pieces, close: a.framing === 'close' && !bodiless(a) };
}

/** Fields each proxy sets on its own hop (RFC 9110 §6.6.1 Date, §10.2.4 Server, §7.6.1), and tokengate's X-Request-Id. */
const ANSWER_OWNED = new Set(['date', 'server', 'x-request-id', 'content-length', ...HOP_BY_HOP]);

/** nginx drops an empty Content-Type from an answer; tokengate passes it (RFC 9110 §5.5: a field value may be empty). */
const nginxDropsEmptyContentType = ([name, value]: HeaderLine) => lower(name) === 'content-type' && value === '';

/**
 * nginx writes the fields it knows (Content-Type, Location...) first and the others after, in the
 * upstream's order; tokengate keeps the upstream's order. RFC 9110 §5.3: the order of fields with
 * different names carries no meaning, that of lines with the same name does, and both keep that.
 */
function byName(lines: HeaderLine[]): HeaderLine[] {
  return lines
    .map((line, at) => ({ line, at, name: lower(line[0]) }))
    .sort((a, b) => (a.name === b.name ? a.at - b.at : a.name < b.name ? -1 : 1))
    .map(({ line }) => line);
}

/**
 * Fields for the hop between upstream and proxy: `Proxy-Authenticate` asks the proxy for its
 * credentials (RFC 9110 §11.7.1: it applies to the next outbound client only), and the fields the
 * upstream names in its Connection (RFC 9110 §7.6.1). nginx passes them on; tokengate removes them.
 */
function upstreamHopOnly(sentByUpstream: readonly HeaderLine[]): Set<string> {
  return new Set(['proxy-authenticate', ...namedInConnection(sentByUpstream)]);
}

function answerComparable(a: Answer, sentByUpstream: readonly HeaderLine[]): HeaderLine[] {
  const hopOnly = upstreamHopOnly(sentByUpstream);
  return byName(
    a.headers.filter((line) => !ANSWER_OWNED.has(lower(line[0])) && !hopOnly.has(lower(line[0])) && !nginxDropsEmptyContentType(line)),
  );
}

// ---------------------------------------------------------------------------------------------

describe('differential: tokengate and nginx as reverse proxies of one upstream', requireProgram('nginx', 'nginx'), () => {
  let upstream: RecordingUpstream;
  let nginx: Nginx;
  let oidc: OidcServer;
  let gateway: TestGateway;
  let viaNginx: WireClient;
  let viaTokengate: WireClient;

  before(async () => {
    upstream = await startRecordingUpstream();
    nginx = await startNginx(upstream.port);
    oidc = await startOidcProvider(
      [
        { client_id: 'differential', client_secret: CLIENT_SECRET, token_endpoint_auth_method: 'client_secret_basic' },
        {
          client_id: 'differential-dpop',
          client_secret: CLIENT_SECRET,
          token_endpoint_auth_method: 'client_secret_basic',
          dpop_bound_access_tokens: true,
        },
      ],
      { features: { dPoP: { enabled: true } } },
    );
    gateway = await startGateway(`
listen: { host: 127.0.0.1 }
logging: { accessLog: off }
secrets:
  client: { value: ${CLIENT_SECRET} }
  gateway-key: { value: gateway-key-0123456789 }
  route-key: { value: route-key-0123456789 }
access: { apiKeys: [{ secret: gateway-key }] }
connections:
  idp: { clientId: differential, tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: client } }
  bound: { clientId: differential-dpop, tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: client }, dpop: {} }
routes:
  - name: with-dpop
    match: { pathPrefix: /, host: ${DPOP_HOST} }
    upstream: ${upstream.url}
    auth: { connection: bound }
    access: { header: X-Route-Key, apiKeys: [{ secret: route-key }] }
  - name: with-token
    match: { pathPrefix: /, host: ${TOKEN_HOST} }
    upstream: ${upstream.url}
    auth: { connection: idp }
  - name: without-token
    match: { pathPrefix: / }
    upstream: ${upstream.url}
    auth: { type: none }
`);
    viaNginx = new WireClient(nginx.port);
    viaTokengate = new WireClient(Number(new URL(gateway.url).port));
  });

  after(async () => {
    viaNginx.close();
    viaTokengate.close();
    await gateway.stop();
    await nginx.stop();
    await oidc.close();
    await upstream.close();
  });

  /** Sends `sent` through one proxy; returns the caller's answer and what the upstream received. */
  async function through(client: WireClient, name: string, method: string, sent: ReturnType<typeof encode>) {
    const before = upstream.received.length;
    const answer = await exchange(client, method, sent, name);
    assert.deepEqual(upstream.errors, [], `the upstream could not read what ${name} sent`);
    return { answer, received: upstream.received.slice(before) };
  }

  it('forwards 300 generated requests as nginx does, but for the documented differences', { timeout: 240_000 }, async () => {
    upstream.script = OK;
    /** What the run covered: every method and body shape must have come up (a generator change cannot quietly drop one). */
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        seen.add(r.method);
        seen.add(r.body.shape);
        if (r.body.shape !== 'absent' && r.body.shape !== 'zero' && r.body.bytes === MIB) seen.add('1 MiB');
        if (r.body.shape === 'length' && r.body.expectContinue) seen.add('100-continue');
        if (r.body.shape === 'chunked' && r.body.trailers.length > 0) seen.add('trailers');
        if (r.headers.some(([, v]) => /[\x80-\xff]/.test(v))) seen.add('obs-text');
        if (r.headers.filter(([n]) => lower(n) === 'cookie').length > 1) seen.add('cookies');
        const sent = encode(r);
        const tg = await through(viaTokengate, 'tokengate', r.method, sent);
        const ng = await through(viaNginx, 'nginx', r.method, sent);
        const recordings: Recordings = { nginx: ng.received[0], tokengate: tg.received[0] };
        const fail = (what: string): never =>
          assert.fail(report(what, sent, { ...recordings, answers: { nginx: ng.answer, tokengate: tg.answer } }));
        if (tg.received.length !== 1) fail('tokengate sends the request upstream exactly once');
        if (nginxRefusesRepeated(r.headers) !== undefined) {
          if (ng.answer.status !== 400 || ng.received.length !== 0) fail('nginx refuses a repeated field it takes once');
          return;
        }
        if (ng.received.length !== 1) fail('nginx sends the request upstream exactly once');
        const t = recordings.tokengate!;
        const n = recordings.nginx!;
        if (tg.answer.status !== 200 || ng.answer.status !== 200) fail('both callers get the upstream answer');
        if (t.method !== n.method) fail('method');
        if (t.target !== normalisedTarget(n.target)) fail('target');
        if (!t.body.bytes.equals(n.body.bytes)) fail('body bytes');
        if (JSON.stringify(t.body.trailers) !== JSON.stringify(n.body.trailers)) fail('request trailers');
        assert.deepEqual(comparable(t, r.headers), comparable(n, r.headers), report('headers', sent, recordings));
        checkOwnedFields(r, { nginx: n, tokengate: t }, upstream.port, fail);
      }),
      { numRuns: 300, seed: SEED, includeErrorInReport: true },
    );
    for (const wanted of [...METHODS, 'absent', 'zero', 'length', 'chunked', '1 MiB', '100-continue', 'trailers', 'obs-text', 'cookies'])
      assert.ok(seen.has(wanted), `no generated request had ${wanted}`);
  });

  it(
    'passes 100 generated upstream answers to the caller as nginx does, but for the documented differences',
    { timeout: 240_000 },
    async () => {
      const seen = new Set<string>();
      await fc.assert(
        fc.asyncProperty(answer, async (a) => {
          seen
            .add(a.method)
            .add(a.framing)
            .add(bodiless(a) ? `no body` : 'body');
          if (a.status === 204 || a.status === 304) seen.add(String(a.status));
          if (a.status >= 200 && a.status < 600) seen.add(`${String(a.status).charAt(0)}xx`);
          seen.add(a.interim);
          if (a.slow.length > 0 && !bodiless(a)) seen.add('slow');
          if (a.framing === 'chunked' && a.trailers.length > 0 && !bodiless(a)) seen.add('trailers');
          if (a.headers.filter(([n]) => lower(n) === 'set-cookie').length > 1) seen.add('Set-Cookie lines');
          const sent = encode({ method: a.method, target: '/answers', host: 'plain.test', headers: [], body: { shape: 'absent' } });
          upstream.script = () => script(a, true);
          const tg = await through(viaTokengate, 'tokengate', a.method, sent);
          // nginx 1.22 passes a 102 or 103 on as if it were the final answer (docs/http-semantics.md): it gets the answer without it.
          upstream.script = () => script(a, false);
          const ng = await through(viaNginx, 'nginx', a.method, sent);
          const answers = { nginx: ng.answer, tokengate: tg.answer, upstreamSent: script(a, true) };
          const fail = (what: string): never => assert.fail(report(what, sent, answers));
          if (tg.answer.status !== ng.answer.status) fail('status');
          if (tg.answer.reason !== ng.answer.reason) fail('reason phrase');
          // A 103 reaches the caller through tokengate, a 102 does not (nginx 1.22 cannot pass either on: see above).
          const hints = a.interim === '103' ? [{ status: 103, headers: [['Link', EARLY_HINTS_LINK]] }] : [];
          if (JSON.stringify(tg.answer.interim) !== JSON.stringify(hints)) fail('interim answers');
          if (ng.answer.interim.length !== 0) fail('interim answers through nginx');
          // nginx drops an upstream's trailer fields (docs/http-semantics.md); tokengate passes them on.
          if (ng.answer.body.trailers.length !== 0) fail('nginx passed trailers on');
          const trailersSent = a.framing === 'chunked' && !bodiless(a) ? a.trailers : [];
          if (JSON.stringify(tg.answer.body.trailers) !== JSON.stringify(trailersSent)) fail('trailers as the upstream sent them');
          if (!tg.answer.body.bytes.equals(ng.answer.body.bytes)) fail('body bytes');
          if (!tg.answer.body.bytes.equals(a.body)) fail('body bytes as the upstream sent them');
          assert.deepEqual(
            answerComparable(tg.answer, a.headers),
            answerComparable(ng.answer, a.headers),
            report('headers', sent, answers),
          );
          // The upstream's hop-only fields and its own request id never reach the caller through tokengate.
          const hopOnly = upstreamHopOnly(a.headers);
          for (const [name] of tg.answer.headers) {
            const n = lower(name);
            if (hopOnly.has(n) || n === 'upgrade' || n === 'proxy-connection' || n === 'trailer') fail(`the upstream's ${name} passed on`);
          }
          if (values(tg.answer.headers, 'x-request-id')[0] === 'the-upstream-id') fail("the upstream's X-Request-Id passed on");
          // HEAD, 204, 304: the length the upstream declared, or none, through both.
          if (
            tg.answer.body.framing === 'none' &&
            JSON.stringify(values(tg.answer.headers, 'content-length')) !== JSON.stringify(values(ng.answer.headers, 'content-length'))
          )
            fail('Content-Length of an answer without a body');
          if (values(tg.answer.headers, 'x-request-id').length !== 1) fail('X-Request-Id');
        }),
        { numRuns: 100, seed: SEED, includeErrorInReport: true },
      );
      const wanted = [
        'GET',
        'HEAD',
        'length',
        'chunked',
        'close',
        'body',
        'no body',
        '204',
        '304',
        '2xx',
        '3xx',
        '4xx',
        '5xx',
        '103',
        'slow',
        'trailers',
        'Set-Cookie lines',
      ];
      for (const kind of wanted) assert.ok(seen.has(kind), `no generated answer had ${kind}`);
    },
  );

  interface Observed {
    answer: Answer;
    received: Received[];
  }

  /**
   * Each intended difference of docs/http-semantics.md, shown on one request: what nginx does, and
   * what tokengate does instead. A row that stops holding means the page is out of date.
   */
  const DIFFERENCES: Array<{ row: string; head: string; body?: string; reply?: Reply; check(tokengate: Observed, nginx: Observed): void }> =
    [
      {
        row: 'TRACE is forwarded',
        head: 'TRACE /orders/1 HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        check: (tg, ng) => {
          assert.equal(ng.answer.status, 405);
          assert.equal(ng.received.length, 0);
          assert.equal(tg.received[0]?.method, 'TRACE');
        },
      },
      {
        row: 'dot segments and empty segments are resolved',
        head: 'GET /orders//1/./x/../items HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        check: (tg, ng) => {
          assert.equal(ng.received[0]?.target, '/orders//1/./x/../items');
          assert.equal(tg.received[0]?.target, '/orders/1/items');
        },
      },
      {
        row: 'an encoded slash, backslash or NUL in the path is refused',
        head: 'GET /orders/a%2Fb HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        check: (tg, ng) => {
          assert.equal(ng.received[0]?.target, '/orders/a%2Fb');
          assert.equal(tg.answer.status, 400);
          assert.equal(tg.received.length, 0);
        },
      },
      {
        row: 'hop-by-hop fields and the fields named in Connection are removed',
        head: 'GET /hop HTTP/1.1\r\nHost: plain.test\r\nConnection: X-Hop\r\nX-Hop: 1\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nTrailer: X-Sum\r\n\r\n',
        check: (tg, ng) => {
          for (const name of ['x-hop', 'proxy-authorization', 'proxy-connection', 'trailer']) {
            assert.equal(values(ng.received[0]!.headers, name).length, 1, `nginx passes ${name}`);
            assert.equal(values(tg.received[0]!.headers, name).length, 0, `tokengate removes ${name}`);
          }
        },
      },
      {
        row: "the caller's credentials are removed on every route",
        head: 'GET /creds HTTP/1.1\r\nHost: plain.test\r\nAuthorization: Bearer caller\r\nDPoP: caller.proof\r\n\r\n',
        check: (tg, ng) => {
          assert.deepEqual(values(ng.received[0]!.headers, 'authorization'), ['Bearer caller']);
          assert.deepEqual(values(tg.received[0]!.headers, 'authorization'), []);
          assert.deepEqual(values(tg.received[0]!.headers, 'dpop'), []);
          assert.deepEqual(values(ng.received[0]!.headers, 'x-route-key'), ['route-key-0123456789']);
          assert.deepEqual(values(tg.received[0]!.headers, 'x-route-key'), []);
        },
      },
      {
        row: "the admin console's session cookie is removed",
        head: 'GET /cookies HTTP/1.1\r\nHost: plain.test\r\nCookie: a=1; tokengate_session=s3ss10n\r\nCookie: b=2\r\n\r\n',
        check: (tg, ng) => {
          assert.deepEqual(values(ng.received[0]!.headers, 'cookie'), ['a=1; tokengate_session=s3ss10n', 'b=2']);
          assert.deepEqual(values(tg.received[0]!.headers, 'cookie'), ['a=1', 'b=2']);
        },
      },
      {
        row: 'field names with characters other than letters, digits and "-" are kept',
        head: 'GET /names HTTP/1.1\r\nHost: plain.test\r\nX_Tenant: 7\r\nX.Trace: 8\r\n\r\n',
        check: (tg, ng) => {
          assert.deepEqual(values(ng.received[0]!.headers, 'x_tenant'), []);
          assert.deepEqual(values(ng.received[0]!.headers, 'x.trace'), []);
          assert.deepEqual(values(tg.received[0]!.headers, 'x_tenant'), ['7']);
          assert.deepEqual(values(tg.received[0]!.headers, 'x.trace'), ['8']);
        },
      },
      {
        row: 'a control character in a field value is refused',
        head: 'GET /ctl HTTP/1.1\r\nHost: plain.test\r\nX-Note: a\u0001b\r\n\r\n',
        check: (tg, ng) => {
          assert.deepEqual(values(ng.received[0]!.headers, 'x-note'), ['a\u0001b']);
          assert.equal(tg.answer.status, 400);
          assert.equal(tg.received.length, 0);
        },
      },
      {
        row: 'X-Forwarded-Host of an absolute-form request is its authority',
        head: 'GET http://other.example/abs HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        check: (tg, ng) => {
          assert.equal(tg.received[0]?.target, '/abs');
          assert.equal(ng.received[0]?.target, '/abs');
          assert.deepEqual(values(ng.received[0].headers, 'x-forwarded-host'), ['plain.test']);
          assert.deepEqual(values(tg.received[0].headers, 'x-forwarded-host'), ['other.example']);
        },
      },
      {
        row: 'a list field in several lines is forwarded',
        head: 'GET /etags HTTP/1.1\r\nHost: plain.test\r\nIf-None-Match: "a"\r\nIf-None-Match: "b"\r\n\r\n',
        check: (tg, ng) => {
          assert.equal(ng.answer.status, 400);
          assert.equal(ng.received.length, 0);
          assert.deepEqual(values(tg.received[0]!.headers, 'if-none-match'), ['"a"', '"b"']);
        },
      },
      {
        row: 'a POST without a body says Content-Length: 0',
        head: 'POST /orders/1/cancel HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        check: (tg, ng) => {
          assert.deepEqual(values(ng.received[0]!.headers, 'content-length'), []);
          assert.deepEqual(values(tg.received[0]!.headers, 'content-length'), ['0']);
          assert.equal(tg.received[0]!.body.bytes.length + ng.received[0]!.body.bytes.length, 0);
        },
      },
      {
        row: "the upstream's Date and Server are passed on",
        head: 'GET /dated HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        reply: {
          pieces: ['HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\nServer: orders/2.1\r\nContent-Length: 0\r\n\r\n'],
          close: false,
        },
        check: (tg, ng) => {
          assert.deepEqual(values(tg.answer.headers, 'server'), ['orders/2.1']);
          assert.deepEqual(values(tg.answer.headers, 'date'), ['Tue, 01 Dec 2026 10:00:00 GMT']);
          assert.deepEqual(values(ng.answer.headers, 'server'), ['nginx/1.22.1']);
          assert.notDeepEqual(values(ng.answer.headers, 'date'), ['Tue, 01 Dec 2026 10:00:00 GMT']);
        },
      },
      {
        row: "the upstream's hop-by-hop fields and the fields it names in Connection are removed",
        head: 'GET /hop-answer HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        reply: {
          pieces: [
            'HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: 1\r\nProxy-Authenticate: Basic realm="up"\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTE: trailers\r\nContent-Length: 0\r\n\r\n',
          ],
          close: false,
        },
        check: (tg, ng) => {
          for (const name of ['x-private', 'proxy-authenticate', 'proxy-connection', 'upgrade', 'te']) {
            assert.equal(values(ng.answer.headers, name).length, 1, `nginx passes ${name}`);
            assert.equal(values(tg.answer.headers, name).length, 0, `tokengate removes ${name}`);
          }
        },
      },
      {
        row: "the upstream's X-Request-Id is replaced by the request's",
        head: 'GET /ids HTTP/1.1\r\nHost: plain.test\r\nX-Request-Id: caller-id-7\r\n\r\n',
        reply: { pieces: ['HTTP/1.1 200 OK\r\nX-Request-Id: upstream-id\r\nContent-Length: 0\r\n\r\n'], close: false },
        check: (tg, ng) => {
          assert.deepEqual(values(ng.answer.headers, 'x-request-id'), ['upstream-id']);
          assert.deepEqual(values(tg.answer.headers, 'x-request-id'), ['caller-id-7']);
        },
      },
      {
        row: 'trailer fields are passed on',
        head: 'GET /trailers HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        reply: {
          pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 7f\r\n\r\n'],
          close: false,
        },
        check: (tg, ng) => {
          assert.deepEqual(ng.answer.body.trailers, []);
          assert.deepEqual(values(ng.answer.headers, 'trailer'), ['X-Sum']);
          assert.deepEqual(tg.answer.body.trailers, [['X-Sum', '7f']]);
          assert.deepEqual(values(tg.answer.headers, 'trailer'), []);
        },
      },
      {
        row: 'an empty Content-Type is passed on',
        head: 'GET /empty-type HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        reply: { pieces: ['HTTP/1.1 200 OK\r\nContent-Type:\r\nContent-Length: 0\r\n\r\n'], close: false },
        check: (tg, ng) => {
          assert.deepEqual(values(ng.answer.headers, 'content-type'), []);
          assert.deepEqual(values(tg.answer.headers, 'content-type'), ['']);
        },
      },
      {
        row: "answer fields keep the upstream's order",
        head: 'GET /order HTTP/1.1\r\nHost: plain.test\r\n\r\n',
        reply: { pieces: ['HTTP/1.1 200 OK\r\nX-First: 1\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n'], close: false },
        check: (tg, ng) => {
          const order = (a: Answer) => a.headers.map(([n]) => lower(n)).filter((n) => n === 'x-first' || n === 'content-type');
          assert.deepEqual(order(ng.answer), ['content-type', 'x-first']);
          assert.deepEqual(order(tg.answer), ['x-first', 'content-type']);
        },
      },
    ];

  for (const difference of DIFFERENCES) {
    it(`documented difference: ${difference.row}`, async () => {
      upstream.script = difference.reply === undefined ? OK : () => difference.reply!;
      const sent = {
        head: Buffer.from(withAccessKeys(difference.head), 'latin1'),
        body: Buffer.from(difference.body ?? '', 'latin1'),
        expectContinue: false,
      };
      const method = difference.head.split(' ')[0]!;
      const tg = await through(viaTokengate, 'tokengate', method, sent);
      const ng = await through(viaNginx, 'nginx', method, sent);
      difference.check(tg, ng);
    });
  }

  it('documented difference: a 103 Early Hints is passed on, then the final answer', async () => {
    upstream.script = () => ({
      pieces: [`HTTP/1.1 103 Early Hints\r\nLink: ${EARLY_HINTS_LINK}\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`],
      close: false,
    });
    const head = Buffer.from(withAccessKeys('GET /hints HTTP/1.1\r\nHost: plain.test\r\n\r\n'));
    const tg = await through(viaTokengate, 'tokengate', 'GET', { head, body: Buffer.alloc(0), expectContinue: false });
    assert.deepEqual(tg.answer.interim, [{ status: 103, headers: [['Link', EARLY_HINTS_LINK]] }]);
    assert.equal(tg.answer.status, 200);
    // nginx 1.22 takes the 103 for the final answer, with its own Server and Date, and sends the
    // upstream's 200 after it as that answer's body, on a connection that never ends it.
    const socket = connect(nginx.port, '127.0.0.1');
    socket.write(head);
    let text = '';
    for await (const chunk of socket as AsyncIterable<Buffer>) {
      text += chunk.toString('latin1');
      if (text.endsWith('ok')) break;
    }
    socket.destroy();
    assert.match(text, /^HTTP\/1\.1 103 Early Hints\r\nServer: nginx[^]*\r\n\r\nHTTP\/1\.1 200 OK\r\nContent-Length: 2\r\n\r\nok$/);
  });
});
