/**
 * Header hygiene in both directions. RFC 9110 §7.6.1: hop-by-hop headers, and every header the
 * sender names in `Connection`, are for this hop only and must not be forwarded.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

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

/** `Connection: keep-alive` or `close`, what nearly every message sends, names no other header. */
const PLAIN_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i;

/** The header names a message lists in its Connection header, beyond the fixed hop-by-hop ones. */
function namedInConnection(headers: IncomingHttpHeaders | OutgoingHttpHeaders): Set<string> | undefined {
  const connection = headers.connection;
  if (connection === undefined || PLAIN_CONNECTION.test(String(connection))) return undefined;
  const names = new Set<string>();
  for (const name of String(connection).split(',')) {
    const trimmed = name.trim().toLowerCase();
    if (trimmed !== '') names.add(trimmed);
  }
  return names;
}

/** Hop-by-hop headers out, including those named in Connection. Mutates `headers`. */
export function dropHopByHop(headers: IncomingHttpHeaders | OutgoingHttpHeaders): void {
  const named = namedInConnection(headers);
  if (named !== undefined) for (const name of named) delete headers[name];
  // Only delete what is there: even a no-op `delete` costs a runtime call on the hot path.
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
}

/**
 * A copy of a response's headers without the hop-by-hop ones. On the hot path a copy beats
 * deleting in place: `delete` of an upstream's `connection` and `keep-alive` turns the object
 * into a slow dictionary (measured ~5x slower, then slower again to serialise).
 */
export function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = namedInConnection(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (!HOP_BY_HOP.has(name) && named?.has(name) !== true) out[name] = headers[name];
  }
  return out;
}

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The caller's X-Request-Id when it is well-formed (it reaches logs), else undefined. */
export function acceptRequestId(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined;
}

export interface ForwardedInfo {
  remoteAddress: string | undefined;
  proto: 'http' | 'https';
  host: string | undefined;
}

/**
 * Prepares a caller's headers for the upstream: hop-by-hop out first (so `Connection:
 * authorization` cannot strip what we inject), then the caller's Authorization and the access
 * key out, then ours in. The body's framing survives: a body left without Content-Length or
 * Transfer-Encoding goes out unframed and the upstream reads it as a second request (smuggling,
 * RFC 9112 §11.2); Node redoes the chunked coding on our hop. Mutates `headers`.
 */
export function prepareUpstreamHeaders(
  headers: IncomingHttpHeaders,
  upstreamHost: string,
  requestId: string,
  forwarded: ForwardedInfo,
  accessHeader: string | undefined,
): void {
  const { 'content-length': length, 'transfer-encoding': coding } = headers;
  dropHopByHop(headers);
  if (length !== undefined) headers['content-length'] = length;
  if (coding !== undefined) headers['transfer-encoding'] = coding;
  delete headers.authorization;
  // Node has already answered the caller's `Expect: 100-continue` (RFC 9110 §10.1.1), so the body
  // follows anyway; forwarded, it would ask the upstream for a 100 that nobody waits for.
  delete headers.expect;
  if (accessHeader !== undefined) delete headers[accessHeader];
  const previous = headers['x-forwarded-for'];
  if (forwarded.remoteAddress !== undefined) {
    headers['x-forwarded-for'] = previous === undefined ? forwarded.remoteAddress : `${previous}, ${forwarded.remoteAddress}`;
  }
  headers['x-forwarded-proto'] = forwarded.proto;
  if (forwarded.host !== undefined) headers['x-forwarded-host'] = forwarded.host;
  headers.host = upstreamHost;
  headers['x-request-id'] = requestId;
}
