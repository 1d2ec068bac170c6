/**
 * A DPoP route's side of each exchange (RFC 9449): the proof that goes with every request, and
 * the nonce the upstream hands out on its answers. When a nonce challenge is replayed is
 * replay-policy.ts's decision.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { accessTokenHash } from '../tokens/dpop/proof.js';
import type { RouteDpop } from './runtime.js';

/**
 * RFC 9449 §7.1: a fresh proof per request, `htu` without the query, `ath` binding it to the
 * token. The nonce it carries is kept on `attempt`: a use_dpop_nonce 401 is replayed only for a newer one.
 */
export function dpopProof(
  dpop: RouteDpop,
  attempt: { dpopNonce: string | undefined },
  method: string,
  url: string,
  accessToken: string,
): string {
  if (dpop.athOf?.token !== accessToken) dpop.athOf = { token: accessToken, ath: accessTokenHash(accessToken) };
  const query = url.indexOf('?');
  attempt.dpopNonce = dpop.signer.nonces.get(dpop.origin);
  return dpop.signer.proof(method, dpop.origin, query === -1 ? url : url.slice(0, query), dpop.athOf.ath);
}

/** RFC 9449 §9: the upstream's nonce, from any answer (a 101 too), is used from the next proof on. */
export function rememberNonce(dpop: RouteDpop, headers: IncomingHttpHeaders): void {
  dpop.signer.nonces.remember(dpop.origin, headers['dpop-nonce']);
}
