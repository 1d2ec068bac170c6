/**
 * When a request is sent upstream a second time. A 401 that blames the token (route.replayOn401)
 * is replayed once with a fresh token; under DPoP a 401 asking for a nonce (use_dpop_nonce) is
 * replayed once with the new nonce. Either needs a body that can be sent again. These functions
 * decide; the handler acts (invalidates, refetches, forwards).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Route } from '../config/types.js';
import { dpopChallengeError } from '../tokens/dpop/nonces.js';
import type { RouteDpop } from './runtime.js';
import { hasBody } from './framing.js';

/** What the policy reads of the attempt an answer belongs to (the handler's Exchange is one). */
export interface Attempt {
  /** This attempt is already the replay: there is no third. */
  readonly replayed: boolean;
  /** Its body can be sent again (none, or buffered). */
  readonly replayable: boolean;
  /** The DPoP nonce its proof carried. */
  readonly dpopNonce: string | undefined;
}

/**
 * How the body goes out: `stream` as it arrives (the request cannot be replayed), `replayable`
 * (there is none), `buffer` first (small enough, route.replayBodyLimit). A route that injects no
 * token, or never replays, streams.
 */
export type BodyPlan = 'stream' | 'replayable' | 'buffer';

export function bodyPlan(route: Route, injectsToken: boolean, req: IncomingMessage): BodyPlan {
  if (route.replayOn401 === 'off' || !injectsToken) return 'stream';
  if (!hasBody(req)) return 'replayable';
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > route.replayBodyLimit) return 'stream';
  return 'buffer';
}

/** RFC 6750 §3.1: `error="invalid_token"` says the token itself is the problem (RFC 9449 §7.1: also under DPoP). */
export function wantsReplay(route: Route, headers: IncomingHttpHeaders): boolean {
  if (route.replayOn401 !== 'invalid_token') return route.replayOn401 === 'any';
  const value: string | string[] | undefined = headers['www-authenticate'];
  if (dpopChallengeError(value) === 'invalid_token') return true;
  const challenge = Array.isArray(value) ? value.join(', ') : value;
  return typeof challenge === 'string' && /^\s*bearer\b/i.test(challenge) && /error\s*=\s*"?invalid_token"?/i.test(challenge);
}

/**
 * What a 401 to a request that carried a token leads to: `replay` it with a fresh token;
 * `invalidate` the token and pass the 401 on (a streamed body cannot be sent again, but the next
 * caller need not meet the same 401); `refused_again` when the replay too was refused (an auth
 * failure, passed on); `pass` it on when the route does not blame the token for it.
 */
export type UnauthorizedOutcome = 'replay' | 'invalidate' | 'refused_again' | 'pass';

export function unauthorizedOutcome(route: Route, headers: IncomingHttpHeaders, attempt: Attempt): UnauthorizedOutcome {
  if (attempt.replayed) return 'refused_again';
  if (!wantsReplay(route, headers)) return 'pass';
  return attempt.replayable ? 'replay' : 'invalidate';
}

/**
 * RFC 9449 §9: a `use_dpop_nonce` 401 is replayed once when the request can be, and only for a
 * nonce other than the one the refused proof carried (the upstream's latest, remembered by now).
 */
export function wantsNonceReplay(challenge: string | undefined, attempt: Attempt, dpop: RouteDpop): boolean {
  if (challenge !== 'use_dpop_nonce' || attempt.replayed || !attempt.replayable) return false;
  return dpop.signer.nonces.get(dpop.origin) !== attempt.dpopNonce;
}
