/**
 * The gateway's own errors. Callers branch on `code`, never on message text; the problem+json
 * writer (proxy/problem.ts) is the only place that turns one into an HTTP answer.
 */

/**
 * Why an authorization server could not be used (tokens/failure-cause.ts works it out): fixed text
 * and codes only, never anything a server sent.
 */
export interface FailureCause {
  /** What went wrong: "DNS lookup failed", "connection refused", "HTTP 503". */
  readonly text: string;
  /** The error code, when there is one: ENOTFOUND, ECONNREFUSED, ERR_TLS_CERT_ALTNAME_INVALID. */
  readonly code?: string | undefined;
  /** Set when a config change is the likely fix: what to check ("check tokenUrl"). */
  readonly check?: string | undefined;
}

export type GatewayErrorCode =
  | 'ROUTE_NOT_FOUND'
  | 'TOKEN_REJECTED'
  | 'TOKEN_ENDPOINT_UNAVAILABLE'
  | 'TOKEN_ENDPOINT_TIMEOUT'
  | 'TOKEN_RESPONSE_INVALID'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'ACCESS_DENIED'
  | 'BAD_REQUEST';

const STATUS: Record<GatewayErrorCode, number> = {
  ROUTE_NOT_FOUND: 404,
  TOKEN_REJECTED: 502,
  TOKEN_ENDPOINT_UNAVAILABLE: 503,
  TOKEN_ENDPOINT_TIMEOUT: 504,
  TOKEN_RESPONSE_INVALID: 502,
  UPSTREAM_UNAVAILABLE: 502,
  UPSTREAM_TIMEOUT: 504,
  ACCESS_DENIED: 401,
  BAD_REQUEST: 400,
};

/**
 * RFC 9110 §10.2.3: the Retry-After a 503 carries when neither the token endpoint nor the circuit
 * says more (TOKEN_ENDPOINT_UNAVAILABLE always has one, docs/errors.md).
 */
export const DEFAULT_RETRY_AFTER_S = 1;

const TITLE: Record<GatewayErrorCode, string> = {
  ROUTE_NOT_FOUND: 'No route matches this request',
  TOKEN_REJECTED: 'The authorization server rejected the token request',
  TOKEN_ENDPOINT_UNAVAILABLE: 'The authorization server is unavailable',
  TOKEN_ENDPOINT_TIMEOUT: 'The authorization server did not answer in time',
  TOKEN_RESPONSE_INVALID: 'The authorization server sent an unusable token response',
  UPSTREAM_UNAVAILABLE: 'The upstream is unavailable',
  UPSTREAM_TIMEOUT: 'The upstream did not answer in time',
  ACCESS_DENIED: 'Access denied',
  BAD_REQUEST: 'Bad request',
};

/**
 * Why a token request failed, as the `reason` label of tokengate_token_failures_total. A fixed
 * list so label values stay bounded: OAuth error codes outside the RFC 6749 §5.2 set become
 * `oauth_error`.
 */
export type TokenFailureReason =
  | 'invalid_client'
  | 'invalid_scope'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_request'
  | 'oauth_error'
  | 'http_status'
  | 'timeout'
  | 'network'
  | 'invalid_response'
  | 'circuit_open'
  | 'credentials_unavailable';

const KNOWN_OAUTH_ERRORS = new Set<string>([
  'invalid_client',
  'invalid_scope',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_request',
]);

export function reasonForOAuthError(oauthError: string): TokenFailureReason {
  return KNOWN_OAUTH_ERRORS.has(oauthError) ? (oauthError as TokenFailureReason) : 'oauth_error';
}

export interface GatewayErrorDetails {
  detail?: string;
  status?: number;
  route?: string;
  connection?: string;
  oauthError?: string;
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly statusCode: number;
  readonly title: string;
  readonly detail: string;
  readonly route: string | undefined;
  readonly connection: string | undefined;
  readonly oauthError: string | undefined;
  /** Seconds, sent as `Retry-After`. */
  readonly retryAfter: number | undefined;

  constructor(code: GatewayErrorCode, details: GatewayErrorDetails = {}) {
    super(details.detail ?? TITLE[code], details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.statusCode = details.status ?? STATUS[code];
    this.title = TITLE[code];
    this.detail = details.detail ?? TITLE[code];
    this.route = details.route;
    this.connection = details.connection;
    this.oauthError = details.oauthError;
    this.retryAfter = details.retryAfter;
  }
}

/**
 * A failed token request. Carries what the usage data and the failure metrics need; `detail` is
 * already sanitised (see sanitizeText) because it may reach a caller.
 */
export class TokenError extends GatewayError {
  readonly reason: TokenFailureReason;
  /** HTTP status of the token endpoint's answer, when there was one. */
  readonly endpointStatus: number | undefined;
  /** Whether another attempt may succeed (network, timeout, 5xx, 429). */
  readonly retryable: boolean;
  /** The token endpoint's own `error_description` (RFC 6749 §5.2), sanitised, for the usage data. */
  readonly description: string | undefined;
  /** The host (and port) of the server that failed, when the request got that far. */
  readonly endpointHost: string | undefined;
  /** The underlying cause, for the circuit's refusal to repeat (src/tokens/failure-cause.ts). */
  readonly failureCause: FailureCause | undefined;

  constructor(
    code: GatewayErrorCode,
    reason: TokenFailureReason,
    details: GatewayErrorDetails & {
      endpointStatus?: number;
      retryable?: boolean;
      description?: string | undefined;
      endpointHost?: string | undefined;
      failureCause?: FailureCause | undefined;
    } = {},
  ) {
    super(code, details);
    this.name = 'TokenError';
    this.reason = reason;
    this.endpointStatus = details.endpointStatus;
    this.retryable = details.retryable ?? false;
    this.description = details.description;
    this.endpointHost = details.endpointHost;
    this.failureCause = details.failureCause;
  }

  /**
   * A copy with the connection or Retry-After filled in. Errors are values: one may already be in
   * the hands of every caller that shared a token request, or remembered for the next ones, so it
   * is never changed after it is made.
   */
  with(changes: { connection?: string | undefined; retryAfter?: number | undefined }): TokenError {
    return new TokenError(this.code, this.reason, {
      detail: this.detail,
      status: this.statusCode,
      route: this.route,
      connection: 'connection' in changes ? changes.connection : this.connection,
      oauthError: this.oauthError,
      retryAfter: 'retryAfter' in changes ? changes.retryAfter : this.retryAfter,
      cause: this.cause,
      endpointStatus: this.endpointStatus,
      retryable: this.retryable,
      description: this.description,
      endpointHost: this.endpointHost,
      failureCause: this.failureCause,
    });
  }
}

const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]+/g;
export const MAX_DETAIL_LENGTH = 256;

/**
 * Text that came from a token endpoint or upstream (an `error_description`, say) is never echoed
 * raw: control characters are stripped and the length is capped.
 */
export function sanitizeText(text: unknown, max = MAX_DETAIL_LENGTH): string | undefined {
  if (typeof text !== 'string') return undefined;
  const clean = text.replace(CONTROL_CHARS, ' ').trim();
  if (clean === '') return undefined;
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
