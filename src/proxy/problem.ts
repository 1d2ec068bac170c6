import type { ServerResponse } from 'node:http';
import type { GatewayError } from '../errors.js';

const PROBLEM_TYPE_BASE = 'https://tokengate.dev/problems/';
/** RFC 9110 §10.2.3: a 503 tells the caller when to come back, also when nobody told us. */
export const DEFAULT_RETRY_AFTER_S = 5;

/**
 * The only place that writes the gateway's own answers: RFC 9457 problem+json. Its text comes from
 * GatewayError, whose detail is already sanitised; nothing raw from a token endpoint or an upstream.
 */
export function writeProblem(
  res: ServerResponse,
  error: GatewayError,
  requestId: string,
  where: { route?: string | undefined; connection?: string | undefined } = {},
): void {
  if (res.headersSent) {
    // The answer already started: all we can still say is that it is incomplete.
    res.destroy();
    return;
  }
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
  const payload = JSON.stringify(body);
  res.statusCode = error.statusCode;
  res.setHeader('content-type', 'application/problem+json');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.setHeader('cache-control', 'no-store');
  const retryAfter = error.retryAfter ?? (error.statusCode === 503 ? DEFAULT_RETRY_AFTER_S : undefined);
  if (retryAfter !== undefined) res.setHeader('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  res.end(payload);
}
