/**
 * The proxy listener's `clientError` answers: Node's HTTP parser refused a request before there
 * was a response object, so errors/problem.ts's body is written raw onto the socket.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors/gateway.js';
import { problemJson } from '../errors/problem.js';

/**
 * The statuses Node itself picks for these parser errors when no clientError listener is set;
 * everything else it refuses is a 400.
 */
const CLIENT_ERRORS: Readonly<Record<string, { status: number; detail: string }>> = {
  HPE_HEADER_OVERFLOW: { status: 431, detail: 'the request headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, detail: 'the request did not arrive in time' },
};
const INVALID_REQUEST = { status: 400, detail: 'the request is not valid HTTP/1.1 (RFC 9112)' };
/** Marks a socket whose parser error already waits for an earlier answer (the parser may report it again). */
const ANSWERING = Symbol('tokengate.answering');

/**
 * The proxy listener's `clientError` handler: Node's parser refused the request (smuggling shapes
 * included) before there was a response object, so the problem+json answer is written raw.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy(error);
    return;
  }
  // RFC 9112 §9.3.2: answers to pipelined requests go out in request order. A malformed request
  // behind one still being answered (its request complete: the error is about a later one) waits
  // for that answer, or the earlier caller would lose it. A time-out or a broken body of the
  // request being answered is about that request, and is answered at once.
  const pending = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (
    pending !== null &&
    pending !== undefined &&
    pending.req.complete &&
    error.code !== 'ERR_HTTP_REQUEST_TIMEOUT' &&
    !pending.writableFinished &&
    !pending.destroyed
  ) {
    if ((socket as Duplex & { [ANSWERING]?: true })[ANSWERING] === true) return;
    (socket as Duplex & { [ANSWERING]?: true })[ANSWERING] = true;
    // After Node's own 'close' handling has moved on to the next queued answer, if any.
    pending.once('close', () =>
      setImmediate(() => {
        (socket as Duplex & { [ANSWERING]?: true })[ANSWERING] = undefined;
        answerClientError(error, socket);
      }),
    );
    return;
  }
  const { status, detail } = CLIENT_ERRORS[error.code ?? ''] ?? INVALID_REQUEST;
  const requestId = randomUUID();
  const problem = new GatewayError('BAD_REQUEST', { status, detail });
  const payload = problemJson(problem, requestId);
  socket.end(
    `HTTP/1.1 ${problem.statusCode} ${STATUS_CODES[problem.statusCode]}\r\n` +
      `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n` +
      `cache-control: no-store\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${payload}`,
  );
}
