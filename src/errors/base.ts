/**
 * The one base of tokengate's own errors (jose's `util/errors.ts`, undici's `lib/core/errors.js`):
 * a stable `code` callers branch on, never the message text; the HTTP status and problem+json
 * title that go with it (codes.ts); a `detail` that is safe to show; the original error as `cause`.
 * errors/problem.ts is the one writer that turns one into an answer, on either listener.
 */
import { ERRORS, type ErrorCode } from './codes.js';

export interface TokengateErrorOptions {
  /** Instead of the code's own status (ACCESS_DENIED is 401 or 403). */
  readonly status?: number | undefined;
  /** Seconds, sent as `Retry-After` (RFC 9110 §10.2.3). */
  readonly retryAfter?: number | undefined;
  readonly cause?: unknown;
}

/** Where the answer is given, as the writer knows it: fills in what the error does not say. */
export interface ProblemContext {
  readonly route?: string | undefined;
  readonly connection?: string | undefined;
}

export class TokengateError<Code extends ErrorCode = ErrorCode> extends Error {
  readonly code: Code;
  readonly statusCode: number;
  readonly title: string;
  /** One line about this case; already sanitised (sanitize.ts) where it holds a peer's text. */
  readonly detail: string;
  readonly retryAfter: number | undefined;

  constructor(code: Code, detail: string | undefined, options: TokengateErrorOptions = {}) {
    const { status, title } = ERRORS[code];
    super(detail ?? title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokengateError';
    this.code = code;
    this.statusCode = options.status ?? status;
    this.title = title;
    this.detail = detail ?? title;
    this.retryAfter = options.retryAfter;
  }

  /** The problem's extension members (RFC 9457 §3.2) this error adds after `code`; none by default. */
  problemFields(_context: ProblemContext): Record<string, unknown> {
    return {};
  }
}
