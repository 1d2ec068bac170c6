/**
 * Why an authorization server could not be used, in words an operator can act on: the underlying
 * cause (DNS, refused, TLS, time-out, HTTP status) with its error code, and whether it looks like a
 * config mistake (a host name that does not resolve, a certificate for another name or from an
 * unknown CA: "check tokenUrl") rather than an outage. It goes into problem details, the Test
 * result, the circuit's refusal and the logs, so it never carries anything but codes and fixed text.
 */
import type { FailureCause } from '../errors/gateway.js';

/** The config key that names the server: where to look when the cause is config-shaped. */
export type EndpointKey = 'tokenUrl' | 'issuer';

/** RFC 5280 path validation failures: the chain does not lead to a trusted CA. */
const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

const CERT_DATES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

const NETWORK: Readonly<Record<string, string>> = {
  EAI_AGAIN: 'DNS lookup failed temporarily',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
};

/** The cause of a transport failure (no HTTP answer), from the error's code. */
export function transportCause(error: unknown, key: EndpointKey): FailureCause {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOTFOUND') return { text: 'DNS lookup failed', code, check: `check ${key}: its host name does not resolve` };
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return { text: 'TLS certificate name mismatch', code, check: `check ${key}: the server's certificate is for another name` };
  if (code !== undefined && UNKNOWN_CA.has(code))
    return { text: 'TLS certificate from an unknown CA', code, check: `check ${key}, or trust its CA with the connection's tls.ca` };
  if (code !== undefined && CERT_DATES.has(code)) return { text: 'TLS certificate expired or not yet valid', code };
  if (code !== undefined && NETWORK[code] !== undefined) return { text: NETWORK[code], code };
  if (code !== undefined && (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || code === 'EPROTO'))
    return { text: 'TLS handshake failed', code };
  const message = error instanceof Error ? error.message : undefined;
  return code === undefined ? { text: message ?? 'connection failed' } : { text: 'connection failed', code };
}

/** "DNS lookup failed (ENOTFOUND)" */
export function describeCause(cause: FailureCause): string {
  return cause.code === undefined ? cause.text : `${cause.text} (${cause.code})`;
}

/** "DNS lookup failed, ENOTFOUND" (for inside parentheses) */
export function describeCauseShort(cause: FailureCause): string {
  return cause.code === undefined ? cause.text : `${cause.text}, ${cause.code}`;
}

/** `detail` followed by what to check, when the cause is config-shaped. */
export function withCheck(detail: string, cause: FailureCause | undefined): string {
  return cause?.check === undefined ? detail : `${detail}; ${cause.check}`;
}
