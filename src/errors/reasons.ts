/**
 * The fixed lists behind the `reason` labels of the failure metrics (docs/observability.md). Fixed so
 * label values stay bounded, and each spelled once: the types derive from the lists, and the
 * metrics declare every series at zero from them.
 */

/** RFC 6749 §5.2: the token endpoint's error codes that keep their own reason; others become `oauth_error`. */
export const OAUTH_ERROR_REASONS = [
  'invalid_client',
  'invalid_scope',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_request',
] as const;

/** Why a token request failed: the `reason` label of tokengate_token_failures_total. */
export const TOKEN_FAILURE_REASONS = [
  ...OAUTH_ERROR_REASONS,
  'oauth_error',
  'http_status',
  'timeout',
  'network',
  'invalid_response',
  'circuit_open',
  'credentials_unavailable',
] as const;
export type TokenFailureReason = (typeof TOKEN_FAILURE_REASONS)[number];

const KNOWN_OAUTH_ERRORS: ReadonlySet<string> = new Set(OAUTH_ERROR_REASONS);

export function reasonForOAuthError(oauthError: string): TokenFailureReason {
  return KNOWN_OAUTH_ERRORS.has(oauthError) ? (oauthError as TokenFailureReason) : 'oauth_error';
}

/** How an upstream failed: the `reason` label of tokengate_upstream_errors_total. */
export const UPSTREAM_ERROR_REASONS = ['unavailable', 'timeout', 'reset'] as const;
export type UpstreamErrorReason = (typeof UPSTREAM_ERROR_REASONS)[number];

/** Why the access policy refused a caller: the `reason` label of tokengate_access_denied_total. */
export const ACCESS_DENIALS = ['missing_key', 'wrong_key', 'address'] as const;
export type AccessDenial = (typeof ACCESS_DENIALS)[number];
