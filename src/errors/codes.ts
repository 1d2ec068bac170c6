/**
 * Every code tokengate answers with itself, on either listener, with its HTTP status and the fixed
 * `title` of its problem+json (RFC 9457 §3.1.3: the title does not change from case to case).
 * docs/errors.md has a row for each (test/docs-reference.test.ts checks the statuses).
 */
export const ERRORS = {
  // The proxy listener: the gateway's own answers instead of the upstream's.
  ROUTE_NOT_FOUND: { status: 404, title: 'No route matches this request' },
  TOKEN_REJECTED: { status: 502, title: 'The authorization server rejected the token request' },
  TOKEN_ENDPOINT_UNAVAILABLE: { status: 503, title: 'The authorization server is unavailable' },
  TOKEN_ENDPOINT_TIMEOUT: { status: 504, title: 'The authorization server did not answer in time' },
  TOKEN_RESPONSE_INVALID: { status: 502, title: 'The authorization server sent an unusable token response' },
  UPSTREAM_UNAVAILABLE: { status: 502, title: 'The upstream is unavailable' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'The upstream did not answer in time' },
  ACCESS_DENIED: { status: 401, title: 'Access denied' },
  // Both listeners.
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  // The admin listener: its API's refusals, which the console and scripts branch on.
  ADMIN_AUTH_REQUIRED: { status: 401, title: 'Sign in with an admin key first' },
  ADMIN_FORBIDDEN: { status: 403, title: 'This change is not allowed' },
  CONFIG_INVALID: { status: 422, title: 'The change would make the config invalid' },
  CONFIG_READ_ONLY: { status: 409, title: 'The config file is read-only' },
  CONFIG_CHANGED: { status: 409, title: 'The config file changed since it was read' },
  CONNECTION_IN_USE: { status: 409, title: 'Routes still use this connection' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  BODY_TOO_LARGE: { status: 413, title: 'The body is too large' },
  ADMIN_SSO_UNAVAILABLE: { status: 503, title: 'The single sign-on provider cannot be reached' },
  INTERNAL_ERROR: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { readonly status: number; readonly title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** The codes of the proxy listener (GatewayError, TokenError). */
export const GATEWAY_ERROR_CODES = [
  'ROUTE_NOT_FOUND',
  'TOKEN_REJECTED',
  'TOKEN_ENDPOINT_UNAVAILABLE',
  'TOKEN_ENDPOINT_TIMEOUT',
  'TOKEN_RESPONSE_INVALID',
  'UPSTREAM_UNAVAILABLE',
  'UPSTREAM_TIMEOUT',
  'ACCESS_DENIED',
  'BAD_REQUEST',
] as const satisfies readonly ErrorCode[];
export type GatewayErrorCode = (typeof GATEWAY_ERROR_CODES)[number];

/** The codes of the admin listener (AdminError). */
export const ADMIN_ERROR_CODES = [
  'ADMIN_AUTH_REQUIRED',
  'ADMIN_FORBIDDEN',
  'CONFIG_INVALID',
  'CONFIG_READ_ONLY',
  'CONFIG_CHANGED',
  'CONNECTION_IN_USE',
  'NOT_FOUND',
  'BAD_REQUEST',
  'BODY_TOO_LARGE',
  'ADMIN_SSO_UNAVAILABLE',
  'INTERNAL_ERROR',
] as const satisfies readonly ErrorCode[];
export type AdminErrorCode = (typeof ADMIN_ERROR_CODES)[number];

/** RFC 9457 §3.1.1: `https://tokengate.dev/problems/` and the code in lower case with dashes. */
export const problemType = (code: ErrorCode): string => `https://tokengate.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`;
