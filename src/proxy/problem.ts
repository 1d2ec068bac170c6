/**
 * The only place that writes the gateway's own answers: RFC 9457 problem+json. Its text comes from
 * GatewayError, whose detail is already sanitised; nothing raw from a token endpoint or an upstream.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { DEFAULT_RETRY_AFTER_S, GatewayError } from '../errors.js';

const PROBLEM_TYPE_BASE = 'https://tokengate.dev/problems/';

type Where = { route?: string | undefined; connection?: string | undefined };

function problemJson(error: GatewayError, requestId: string, where: Where): string {
  const body: Record<string, unknown> = {
    type: `${PROBLEM_TYPE_BASE}${error.code.toLowerCase().replaceAll('_', '-')}`,
    title: error.title,
    status: error.statusCode,
    detail: error.detail,
    code: error.code,
    requestId,
  };
  const route = where.route ?? error.route;
  const connection = where.connection ?? error.connection;
  if (route !== undefined) body.route = route;
  if (connection !== undefined) body.connection = connection;
  if (error.oauthError !== undefined) body.oauthError = error.oauthError;
  return JSON.stringify(body);
}

/** Answers a request with `error`; an answer already under way can only be cut short. */
export function writeProblem(res: ServerResponse, error: GatewayError, requestId: string, where: Where = {}): void {
  if (res.headersSent) {
    // The answer already started: all we can still say is that it is incomplete.
    res.destroy();
    return;
  }
  const payload = problemJson(error, requestId, where);
  res.statusCode = error.statusCode;
  res.setHeader('content-type', 'application/problem+json');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-request-id', requestId);
  // RFC 9110 §10.2.3: a 503 tells the caller when to come back, also when nobody told us.
  const retryAfter = error.retryAfter ?? (error.statusCode === 503 ? DEFAULT_RETRY_AFTER_S : undefined);
  if (retryAfter !== undefined) res.setHeader('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  res.end(payload);
}

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
  const payload = problemJson(problem, requestId, {});
  socket.end(
    `HTTP/1.1 ${problem.statusCode} ${STATUS_CODES[problem.statusCode]}\r\n` +
      `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n` +
      `cache-control: no-store\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${payload}`,
  );
}
