/**
 * Fans the token provider's events out to metrics, usage data and the failure log line, so all
 * three always agree on what happened.
 */
import type { Metrics } from './metrics.js';
import type { Usage } from './usage.js';
import type { TokenError } from '../errors/gateway.js';
import type { Logger } from './log.js';
import type { AttemptNumber, TokenObserver, TokenRequestContext } from '../tokens/types.js';

export class Telemetry implements TokenObserver {
  constructor(
    readonly metrics: Metrics,
    readonly usage: Usage,
    readonly log: Logger,
  ) {}

  tokenRequest(connection: string, outcome: 'success' | 'failure', seconds: number): void {
    this.metrics.tokenRequests.inc({ connection, outcome });
    this.metrics.tokenDuration.observe({ connection }, seconds);
    this.usage.recordRequest(connection, outcome);
  }

  tokenFailure(connection: string, error: TokenError, context: TokenRequestContext, number?: AttemptNumber): void {
    this.metrics.tokenFailures.inc({ connection, reason: error.reason });
    if (error.oauthError === 'invalid_dpop_proof') this.metrics.dpopProofFailures.inc({ connection });
    const { time: _time, ...fields } = this.usage.recordFailure(connection, error, context.route, context.requestId);
    // The /usage record's fields; its `time` is pino's own (a second `time` key would be ambiguous JSON).
    // One line per attempt, numbered: retries of one request are told apart, and each says why.
    const of = number === undefined ? '' : ` (attempt ${number.attempt} of at most ${number.maxAttempts})`;
    this.log.warn(
      { event: 'token_failure', ...fields, ...number },
      `token request for ${connection} failed${of}: ${error.reason}: ${error.detail}`,
    );
  }

  secretFallback(connection: string): void {
    this.metrics.secretFallbacks.inc({ connection });
    this.log.warn(
      { event: 'secret_fallback', connection },
      `the current client secret of ${connection} was refused; sent the token request again with clientSecret.previous`,
    );
  }

  dpopNonceRetry(connection: string, server: 'token_endpoint' | 'upstream'): void {
    this.metrics.dpopNonceRetries.inc({ connection, server });
  }
}
