/**
 * The proxy listener's errors: what went wrong between a caller and its upstream, with the route,
 * connection and OAuth error the answer names.
 */
import { TokengateError, type ProblemContext } from './base.js';
import type { GatewayErrorCode } from './codes.js';
import type { TokenFailureReason } from './reasons.js';

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

/**
 * RFC 9110 §10.2.3: the Retry-After a 503 carries when neither the token endpoint nor the circuit
 * says more (TOKEN_ENDPOINT_UNAVAILABLE always has one, docs/errors.md).
 */
export const DEFAULT_RETRY_AFTER_S = 1;

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

export class GatewayError extends TokengateError<GatewayErrorCode> {
  readonly route: string | undefined;
  readonly connection: string | undefined;
  readonly oauthError: string | undefined;

  constructor(code: GatewayErrorCode, details: GatewayErrorDetails = {}) {
    super(code, details.detail, details);
    this.name = 'GatewayError';
    this.route = details.route;
    this.connection = details.connection;
    this.oauthError = details.oauthError;
  }

  /** The route and connection the answer is about (the writer's, when it knows them), and the OAuth error. */
  override problemFields(context: ProblemContext): Record<string, unknown> {
    const fields: Record<string, unknown> = {};
    const route = context.route ?? this.route;
    const connection = context.connection ?? this.connection;
    if (route !== undefined) fields.route = route;
    if (connection !== undefined) fields.connection = connection;
    if (this.oauthError !== undefined) fields.oauthError = this.oauthError;
    return fields;
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
