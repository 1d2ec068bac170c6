/**
 * A forwarded request's head on the wire, written as undici wrote it (the engine before this one):
 * the request line, `host` first, `connection`, the header list as it is, then the body's framing.
 * Every name and value is checked as node's own http client checks them, so that nothing a token
 * endpoint, a config or a caller supplied can end a line early and add one of its own.
 */
import { hasInvalidHeaderChar, isHttpToken } from './llhttp.js';

/** How the body that follows the head is framed on this hop. */
export type BodyFraming = 'none' | 'length' | 'chunked';

export interface RequestHead {
  /** The head, ready to write as Latin-1 (each character one byte, as it came in). */
  readonly text: string;
  readonly framing: BodyFraming;
}

/** A head that cannot be written: the request fails as undici failed it (code UND_ERR_INVALID_ARG). */
export class InvalidRequestError extends Error {
  readonly code = 'UND_ERR_INVALID_ARG';
}

/**
 * RFC 9110 §9.3: the methods whose requests carry content; without a body they say so with
 * `content-length: 0` (RFC 9110 §8.6), the others send no framing at all.
 */
const EXPECTS_CONTENT = new Set(['POST', 'PUT', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH']);

/** RFC 9112 §3.2: the request target, printable ASCII or obs-text, no space. */
const INVALID_TARGET = /[^\u0021-\u00ff]/;

/**
 * The head for `method path` with `headers` (a flat name/value list: `host` is taken out and goes
 * first; a `content-length` in it frames a streamed body). `body` says what follows: nothing, a
 * buffer of that length, or a stream (sent chunked unless the list gives its length).
 * `connection` is `upgrade` (with `upgrade`'s protocol), `close` or `keep-alive`.
 */
export function requestHead(
  method: string,
  path: string,
  headers: readonly string[],
  body: 'none' | number | 'stream',
  connection: string,
  upgrade: string | undefined,
): RequestHead {
  if (!isHttpToken(method)) throw new InvalidRequestError('invalid request method');
  if (INVALID_TARGET.test(path)) throw new InvalidRequestError('invalid request path');
  let host = '';
  let lines = '';
  let length = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (!isHttpToken(name)) throw new InvalidRequestError('invalid header name');
    if (hasInvalidHeaderChar(value)) throw new InvalidRequestError(`invalid ${name.toLowerCase()} header`);
    if (name.length === 4 && name.toLowerCase() === 'host') {
      host = `host: ${value}\r\n`;
      continue;
    }
    if (name.length === 14 && name.toLowerCase() === 'content-length') length = true;
    lines += `${name}: ${value}\r\n`;
  }
  if (upgrade !== undefined && hasInvalidHeaderChar(upgrade)) throw new InvalidRequestError('invalid upgrade header');
  const connectionLines = upgrade === undefined ? `connection: ${connection}\r\n` : `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
  let framing: BodyFraming = 'none';
  let framingLine = '';
  if (body === 'stream') {
    framing = length ? 'length' : 'chunked';
    if (!length) framingLine = 'transfer-encoding: chunked\r\n';
  } else if (length) {
    // The list's own Content-Length never goes with a buffered or absent body: the buffer's size does.
    lines = withoutContentLength(headers);
  }
  if (body !== 'stream') {
    const size = body === 'none' ? 0 : body;
    if (size > 0 || EXPECTS_CONTENT.has(method)) framingLine = `content-length: ${size}\r\n`;
    if (size > 0) framing = 'length';
  }
  return { text: `${method} ${path} HTTP/1.1\r\n${host}${connectionLines}${lines}${framingLine}\r\n`, framing };
}

/** The header lines again, without Content-Length and Host (both are written by requestHead itself). */
function withoutContentLength(headers: readonly string[]): string {
  let lines = '';
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase();
    if (lower !== 'content-length' && lower !== 'host') lines += `${headers[i]}: ${headers[i + 1]}\r\n`;
  }
  return lines;
}
