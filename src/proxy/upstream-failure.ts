/**
 * An upstream call's failure, translated once: the error code undici or the socket gave becomes
 * the metric's reason and the GatewayError the caller is answered with. The caller never sees the
 * upstream's own error text, only the code when it says which network step failed.
 */
import { GatewayError } from '../errors/gateway.js';
// The reasons (UPSTREAM_ERROR_REASONS, `as const`) are listed with the other metric reasons: proxy decides, errors/ spells them.
import type { UpstreamErrorReason } from '../errors/reasons.js';
import { HEAD_TIMEOUT_CODE, UNUSABLE_ANSWER_CODE } from './upstream-call.js';

const NETWORK_UNAVAILABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** undici's code for the connect time-out, and the one for timeouts.responseMs. */
const TIMED_OUT = new Set(['UND_ERR_CONNECT_TIMEOUT', HEAD_TIMEOUT_CODE]);

/** The error's code ('' when it has none): what the failure is classified and logged by. */
export function failureCode(error: Error): string {
  return (error as NodeJS.ErrnoException).code ?? '';
}

/** No answer in time, no way to reach the upstream (DNS, refused, TLS), or a connection cut mid-exchange. */
export function upstreamFailureReason(code: string): UpstreamErrorReason {
  if (TIMED_OUT.has(code)) return 'timeout';
  return NETWORK_UNAVAILABLE.has(code) || code.startsWith('ERR_TLS') || code.includes('CERT') ? 'unavailable' : 'reset';
}

/** The name a trace records the failure under: a time-out as such, else the code or the error's name. */
export function tracedFailure(code: string, error: Error): string {
  return TIMED_OUT.has(code) ? 'timeout' : code || error.name;
}

/** What the caller is answered: 504 UPSTREAM_TIMEOUT or 502 UPSTREAM_UNAVAILABLE, with why. */
export function upstreamFailureError(reason: UpstreamErrorReason, code: string): GatewayError {
  if (reason === 'timeout') return new GatewayError('UPSTREAM_TIMEOUT', { detail: 'the upstream did not answer in time' });
  const detail =
    code === UNUSABLE_ANSWER_CODE
      ? 'the upstream sent an answer that cannot be passed on'
      : reason === 'reset'
        ? 'the upstream reset the connection'
        : `cannot reach the upstream (${code || 'error'})`;
  return new GatewayError('UPSTREAM_UNAVAILABLE', { detail });
}
