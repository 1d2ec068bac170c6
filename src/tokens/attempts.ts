/**
 * Token requests through each connection's circuit (circuit.ts), each told to the observer, and the
 * errors that name a connection's last failure: the circuit's refusal and the caller's expired
 * budget. The provider (provider.ts) decides when to ask and for how long; this is how one asks.
 */
import { DEFAULT_RETRY_AFTER_S, TokenError } from '../errors/gateway.js';
import type { Circuits } from './circuit.js';
import type { ConnectionClient } from './connection-client.js';
import type { TokenResponse } from './endpoint.js';
import { describeCauseShort, withCheck } from './failure-cause.js';
import type { AttemptNumber, TokenObserver, TokenRequestContext } from './types.js';

/**
 * The error a caller gets when its budget ran out, whatever the token endpoint was doing: it names
 * the server (when known) and the last failure of this connection, if there was one.
 */
function budgetExpired(connection: string, budgetMs: number, host: string | undefined, last: TokenError | undefined): TokenError {
  const server = host === undefined ? 'the token endpoint' : `the token endpoint ${host}`;
  const cause = last?.failureCause;
  const lastCause = cause === undefined ? '' : ` (last: ${describeCauseShort(cause)})`;
  return new TokenError('TOKEN_ENDPOINT_TIMEOUT', 'timeout', {
    detail: withCheck(`no token from ${server} within the connection's budget of ${budgetMs} ms${lastCause}`, cause),
    connection,
    retryable: true,
    endpointHost: host,
    failureCause: cause,
  });
}

/** host[:port] of a URL, or undefined. */
function hostOf(url: string | undefined): string | undefined {
  return url !== undefined && URL.canParse(url) ? new URL(url).host : undefined;
}

export class Attempts {
  readonly #circuits: Circuits;
  readonly #observer: TokenObserver;
  /** Each connection's last retryable failure since its last answer: the cause told while its circuit is open. */
  readonly #lastFailures = new Map<string, TokenError>();

  constructor(circuits: Circuits, observer: TokenObserver) {
    this.#circuits = circuits;
    this.#observer = observer;
  }

  /** A connection whose config changed starts with a closed circuit and no remembered failure. */
  forget(connection: string): void {
    this.#circuits.forget(connection);
    this.#lastFailures.delete(connection);
  }

  /**
   * One token request through the circuit, told to the observer. Every TokenError that leaves here
   * names its connection (a new error: the transport's may be shared).
   */
  async attempt(
    client: ConnectionClient,
    params: Readonly<Record<string, string>>,
    context: TokenRequestContext,
    signal: AbortSignal,
    number: AttemptNumber,
  ): Promise<TokenResponse> {
    const connection = client.connection.key;
    const admission = this.#circuits.admit(connection);
    if (!admission.allowed) {
      const error = this.#circuitOpen(client, admission.openUntil);
      this.#observer.tokenFailure(connection, error, context, number);
      throw error;
    }
    let started = performance.now();
    const span = context.trace?.tokenAttempt(connection, number.attempt);
    // RFC 9449 §8: a use_dpop_nonce answer is a request of its own on the wire, counted as one that
    // got no token; the retry carrying the nonce is timed from when it is sent.
    const challenged = (seconds: number): void => {
      this.#observer.tokenRequest(connection, 'failure', seconds);
      started = performance.now();
    };
    try {
      const response = await client.requestToken(params, signal, challenged);
      span?.end(client.tokenEndpoint);
      this.#observer.tokenRequest(connection, 'success', (performance.now() - started) / 1000);
      this.#circuits.success(connection);
      this.#lastFailures.delete(connection);
      return response;
    } catch (thrown) {
      span?.end(client.tokenEndpoint, thrown);
      if (!(thrown instanceof TokenError)) {
        this.#circuits.release(connection, admission.probe);
        throw thrown;
      }
      const error = thrown.with({ connection });
      this.#observer.tokenRequest(connection, 'failure', (performance.now() - started) / 1000);
      this.#observer.tokenFailure(connection, error, context, number);
      // An OAuth error is an answer: the server is up, so it closes the circuit like a success.
      if (!error.retryable) {
        this.#circuits.success(connection);
        this.#lastFailures.delete(connection);
      } else {
        this.#lastFailures.set(connection, error);
        this.#circuits.failure(connection, admission.probe, error.retryAfter === undefined ? undefined : error.retryAfter * 1000);
      }
      throw error;
    }
  }

  /** The server a connection calls: its token endpoint (configured or discovered), else its issuer. */
  #host(client: ConnectionClient): string | undefined {
    return hostOf(client.tokenEndpoint) ?? hostOf(client.connection.issuer);
  }

  budgetExpired(client: ConnectionClient, budgetMs: number): TokenError {
    const key = client.connection.key;
    return budgetExpired(key, budgetMs, this.#lastFailures.get(key)?.endpointHost ?? this.#host(client), this.#lastFailures.get(key));
  }

  /**
   * The refusal while the circuit is open names the server and the failure that opened it, and
   * keeps saying "check tokenUrl" when that failure was config-shaped: an outage and a wrong host
   * must not read alike.
   */
  #circuitOpen(client: ConnectionClient, openUntil: number): TokenError {
    const connection = client.connection.key;
    const last = this.#lastFailures.get(connection);
    const host = last?.endpointHost ?? this.#host(client);
    const cause = last?.failureCause;
    const server = host === undefined ? 'the token endpoint' : `the token endpoint ${host}`;
    const lastCause = cause === undefined ? '' : ` (last: ${describeCauseShort(cause)})`;
    return new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'circuit_open', {
      detail: withCheck(`${server} failed repeatedly${lastCause}; tokengate is not calling it for a moment`, cause),
      connection,
      retryAfter: Math.max(DEFAULT_RETRY_AFTER_S, Math.ceil((openUntil - Date.now()) / 1000)),
      endpointHost: host,
      failureCause: cause,
    });
  }

  /** TOKEN_ENDPOINT_UNAVAILABLE always carries a Retry-After (docs/errors.md): the server's, else the circuit's, else a default. */
  withRetryAfter(error: TokenError, connection: string): TokenError {
    if (error.code !== 'TOKEN_ENDPOINT_UNAVAILABLE' || error.retryAfter !== undefined) return error;
    const openUntil = this.#circuits.openUntil(connection);
    return error.with({ retryAfter: Math.max(DEFAULT_RETRY_AFTER_S, Math.ceil((openUntil - Date.now()) / 1000)) });
  }
}
