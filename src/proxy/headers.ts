/**
 * Header hygiene in both directions. RFC 9110 §7.6.1: hop-by-hop headers, and every header the
 * sender names in `Connection`, are for this hop only and must not be forwarded.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { SESSION_COOKIES } from '../config/admin-cookies.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Never passed on to the caller: the hop-by-hop set and the upstream's X-Request-Id (ours replaces it). */
const NOT_ANSWERED = new Set([...HOP_BY_HOP, 'x-request-id']);

/** `Connection: keep-alive` or `close`, what nearly every message sends, names no other header. */
// Stryker disable next-line Regex: split, keep-alive or close names only itself, or a field named Close, which is reserved (IANA)
const PLAIN_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i;

/** Adds to `names` the header names a Connection header value lists, beyond the fixed hop-by-hop ones. */
function namedInConnection(connection: string | undefined, names: Set<string> | undefined): Set<string> | undefined {
  // The two values nearly every message sends, spelt as nearly everyone does, before the pattern.
  if (connection === undefined || connection === 'keep-alive' || connection === 'close' || PLAIN_CONNECTION.test(connection)) return names;
  names ??= new Set<string>();
  for (const name of connection.split(',')) {
    const trimmed = name.trim().toLowerCase();
    // Stryker disable next-line ConditionalExpression,StringLiteral: no header line has an empty name (Node's parser refuses one)
    if (trimmed !== '') names.add(trimmed);
  }
  return names;
}

/**
 * The upstream's answer for the caller, as a flat name/value list straight from `rawHeaders`: the
 * headers object is never built, each line keeps its case, and repeated lines (Set-Cookie, Vary)
 * stay separate. Hop-by-hop headers and those the upstream names in Connection go; so do its own
 * X-Request-Id, replaced by ours, and a repeated Content-Length, which a caller's parser could
 * read differently from ours (RFC 9112 §6.3).
 */
export function callerResponseHeaders(raw: readonly string[], requestId: string): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    // Stryker disable next-line ConditionalExpression: the length is a cheap first test; the comparison after it decides
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') named = namedInConnection(raw[i + 1], named);
  }
  const out: string[] = [];
  let contentLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (NOT_ANSWERED.has(name) || named?.has(name) === true) continue;
    if (name === 'content-length') {
      if (contentLength) continue;
      contentLength = true;
    }
    out.push(raw[i]!, raw[i + 1]!);
  }
  out.push('x-request-id', requestId);
  return out;
}

/**
 * The upstream's trailer fields for the caller (RFC 9110 §6.5), as [name, value] pairs: each line as
 * it came but for the hop-by-hop ones and a Content-Length, which never belong in a trailer section
 * (RFC 9110 §6.5.1: framing fields).
 */
export function callerTrailers(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower === 'content-length') continue;
    out.push([name, raw[i + 1]!]);
  }
  return out;
}

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The caller's X-Request-Id when it is well-formed (it reaches logs), else undefined. */
export function acceptRequestId(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined;
}

/** What the gateway adds to a forwarded request, beside the caller's end-to-end headers. */
export interface Forwarding {
  /** The upstream's authority, sent as Host. */
  upstreamHost: string;
  requestId: string;
  remoteAddress: string | undefined;
  proto: 'http' | 'https';
  /** The Host (or absolute-form authority) the caller sent, for X-Forwarded-Host. */
  host: string | undefined;
  /** Every configured access-key header (the gateway-wide one and every route's): callers' keys stay here. */
  accessHeaders: ReadonlySet<string>;
  /** `Bearer ...`, or undefined on a route without a connection. */
  authorization: string | undefined;
  /**
   * True when no body goes upstream: the request has none (RFC 9112 §6.3: neither Content-Length nor
   * Transfer-Encoding, or a length of 0). The caller's Content-Length then stays out of the list.
   */
  bodyless: boolean;
}

/**
 * A Cookie line without the admin console's cookies (the session, the sign-in in progress), the
 * others kept as they were sent; '' when nothing is left (the line is then dropped). Each Cookie
 * line is taken on its own. Every admin cookie name contains `tokengate_`: the common case skips the split.
 */
function withoutSessionCookie(cookie: string): string {
  if (!cookie.includes('tokengate_')) return cookie;
  const kept: string[] = [];
  for (const pair of cookie.split(';')) {
    const trimmed = pair.trim();
    const equals = trimmed.indexOf('=');
    if (trimmed !== '' && !SESSION_COOKIES.has(equals === -1 ? trimmed : trimmed.slice(0, equals).trim())) kept.push(trimmed);
  }
  return kept.join('; ');
}

/** Replaced by the gateway's own value, never passed on from the caller. */
/** `dpop` goes with `authorization` (RFC 9449 §7.1): a caller's proof is useless with the gateway's token, and the gateway sets its own. */
const REPLACED = new Set([
  'host',
  'authorization',
  'dpop',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'expect',
]);

/**
 * The caller's lines that never reach the upstream whatever else the request says: those REPLACED,
 * the hop-by-hop ones, and Transfer-Encoding (the client library redoes the chunked coding on our
 * hop, and refuses to be told it). One Set, so each line costs one look-up.
 */
const NOT_FORWARDED = new Set([...REPLACED, ...HOP_BY_HOP]);

/**
 * The caller's request headers for the upstream, as the flat name/value list the upstream client
 * (undici) writes without copying each into an object of its own. They come from the lines as the
 * caller sent them (`rawHeaders`): each keeps its case, order and repeats, as nginx passes them on;
 * Node's joined object would merge repeats and keep only the first of some (a second User-Agent,
 * Referer or Content-Type was lost). Hop-by-hop headers and every header the caller names in
 * `Connection` go first (so `Connection: authorization` cannot strip what we inject), then the
 * caller's Authorization, access keys, admin session cookie and Expect, then ours go in. The body's
 * framing survives: a body left without Content-Length or Transfer-Encoding goes out unframed and
 * the upstream reads it as a second request (smuggling, RFC 9112 §11.2), so a body's Content-Length
 * goes on, and a body without one is sent chunked by the client, which redoes that coding on our
 * hop. A request without a body has no Content-Length in the list, not even the caller's `0`:
 * undici takes a Content-Length header as the body's length, refuses a second one
 * (UND_ERR_INVALID_ARG), and frames a request without a body itself, `content-length: 0` for the
 * methods that expect content (POST, PUT, PATCH, QUERY, PROPFIND, PROPPATCH; RFC 9110 §8.6) and
 * nothing for the others. Node has already answered the caller's `Expect: 100-continue` (RFC 9110
 * §10.1.1), so its body follows anyway; forwarded, Expect would ask the upstream for a 100 that
 * nobody waits for. `headers` is left as it was, so a replay can build the list again.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, rawHeaders: readonly string[], forwarding: Forwarding): string[] {
  const named = namedInConnection(headers.connection, undefined);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i]!;
    const name = raw.toLowerCase();
    // One look-up for what is never forwarded (REPLACED, hop-by-hop, Transfer-Encoding), then the access keys.
    if (NOT_FORWARDED.has(name) || forwarding.accessHeaders.has(name)) continue;
    if (name === 'content-length' ? forwarding.bodyless : named?.has(name) === true) continue;
    if (name === 'cookie') {
      const kept = withoutSessionCookie(rawHeaders[i + 1]!);
      if (kept !== '') out.push(raw, kept);
      continue;
    }
    out.push(raw, rawHeaders[i + 1]!);
  }
  out.push('host', forwarding.upstreamHost);
  const previous = headers['x-forwarded-for'];
  if (forwarding.remoteAddress !== undefined)
    out.push('x-forwarded-for', previous === undefined ? forwarding.remoteAddress : `${String(previous)}, ${forwarding.remoteAddress}`);
  else if (previous !== undefined) out.push('x-forwarded-for', String(previous));
  out.push('x-forwarded-proto', forwarding.proto);
  if (forwarding.host !== undefined) out.push('x-forwarded-host', forwarding.host);
  out.push('x-request-id', forwarding.requestId);
  if (forwarding.authorization !== undefined) out.push('authorization', forwarding.authorization);
  return out;
}
