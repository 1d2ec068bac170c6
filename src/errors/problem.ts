/**
 * The one writer of tokengate's own answers, on both listeners: RFC 9457 problem+json. Its text
 * comes from the error, whose detail is already sanitised; nothing raw from a token endpoint or an
 * upstream. The proxy's raw ServerResponse and Express's Response are the same object underneath.
 */
import type { ServerResponse } from 'node:http';
import type { ProblemContext, TokengateError } from './base.js';
import { problemType } from './codes.js';
import { DEFAULT_RETRY_AFTER_S } from './gateway.js';

/** The problem+json body of `error`; `requestId` when the listener gives each request one (the proxy's). */
export function problemJson(error: TokengateError, requestId: string | undefined, context: ProblemContext = {}): string {
  return JSON.stringify({
    type: problemType(error.code),
    title: error.title,
    status: error.statusCode,
    detail: error.detail,
    code: error.code,
    ...(requestId === undefined ? {} : { requestId }),
    ...error.problemFields(context),
  });
}

/** Answers a request with `error`; an answer already under way can only be cut short. */
export function writeProblem(res: ServerResponse, error: TokengateError, requestId?: string, context: ProblemContext = {}): void {
  if (res.headersSent) {
    // The answer already started: all we can still say is that it is incomplete.
    res.destroy();
    return;
  }
  const payload = problemJson(error, requestId, context);
  res.statusCode = error.statusCode;
  res.setHeader('content-type', 'application/problem+json');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.setHeader('cache-control', 'no-store');
  if (requestId !== undefined) res.setHeader('x-request-id', requestId);
  // RFC 9110 §10.2.3: a 503 tells the caller when to come back, also when nobody told us.
  const retryAfter = error.retryAfter ?? (error.statusCode === 503 ? DEFAULT_RETRY_AFTER_S : undefined);
  if (retryAfter !== undefined) res.setHeader('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  res.end(payload);
}
