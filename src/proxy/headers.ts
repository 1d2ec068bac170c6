/**
 * Header hygiene in both directions. RFC 9110 §7.6.1: hop-by-hop headers, and every header the
 * sender names in `Connection`, are for this hop only and must not be forwarded.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/** Hop-by-hop headers out, including those named in Connection. Mutates `headers`. */
export function dropHopByHop(headers: IncomingHttpHeaders | OutgoingHttpHeaders): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const name of String(connection).split(',')) {
      const trimmed = name.trim().toLowerCase();
      if (trimmed !== '') delete headers[trimmed];
    }
  }
  for (const name of HOP_BY_HOP) delete headers[name];
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
  // follows anyway; forwarded, the header would also make http-proxy skip its proxyReq event,
  // and with it our upstream time-outs.
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
