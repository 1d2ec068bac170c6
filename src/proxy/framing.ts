/**
 * How a caller's request is framed: the shapes refused before anything else is read, and whether
 * a body follows the head. Two HTTP parsers that disagree on either are how requests get smuggled.
 */
import type { IncomingMessage } from 'node:http';

/**
 * Request shapes whose body length or host two HTTP parsers could read differently (request
 * smuggling): the refusal's detail, or undefined. Node's parser refuses most of them; these are
 * the ones it lets through.
 */
export function framingProblem(req: IncomingMessage): string | undefined {
  const transferEncoding = req.headers['transfer-encoding'];
  if (transferEncoding !== undefined) {
    // RFC 9112 §6.1: a message with both is a smuggling attempt.
    if (req.headers['content-length'] !== undefined) return 'a request must not carry both Content-Length and Transfer-Encoding';
    // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; the framing must be treated as faulty.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return 'an HTTP/1.0 request must not carry Transfer-Encoding';
    // RFC 9112 §6.3: without chunked as the final (here: only) coding the body length is unknowable.
    if (transferEncoding.trim().toLowerCase() !== 'chunked') return 'chunked is the only transfer coding accepted on a request';
  }
  // RFC 9112 §3.2: more than one Host line is a 400; Node would quietly keep the first.
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host' && ++hosts > 1) return 'a request must carry exactly one Host header';
  }
  return undefined;
}

/**
 * RFC 9112 §6.3: without Content-Length or Transfer-Encoding a request has no body, whatever its
 * method; nor has one with a length of 0, `0` or `00` (Node's parser has checked it is digits).
 */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0);
}
