/**
 * The admin listener's one translation of errors into answers (openid-client's single
 * `errorHandler`): an AdminError as it is; Express's and body-parser's refusals (malformed JSON, a
 * body too large, a malformed %-escape in the path) as their codes; anything else a 500 whose
 * cause goes to the log, never into the answer (Express's own handler prints the stack there).
 */
import type { NextFunction, Request, Response } from 'express';
import { AdminError } from '../errors/admin.js';
import { writeProblem } from '../errors/problem.js';
import type { Logger } from '../observability/log.js';
import { MAX_BODY_BYTES } from './json-body.js';

function adminErrorOf(error: unknown): AdminError | undefined {
  if (error instanceof AdminError) return error;
  const status = (error as { status?: unknown } | null)?.status;
  if (status === 413) return new AdminError('BODY_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`);
  if (typeof status === 'number' && status >= 400 && status < 500) return new AdminError('BAD_REQUEST', 'the request is malformed');
  return undefined;
}

export function answerAdminError(log: Logger) {
  return (error: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    const refusal = adminErrorOf(error);
    if (refusal !== undefined) return writeProblem(res, refusal);
    log.error({ event: 'admin_error', err: error }, 'admin request failed');
    writeProblem(res, new AdminError('INTERNAL_ERROR', 'the admin request failed; the log says why'));
  };
}
