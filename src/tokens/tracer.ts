/**
 * What the token provider sees of tracing: one span per token-endpoint attempt. The provider only
 * holds one when the request that started the token request is traced, so a token request shared
 * by several callers (single flight) belongs to the trace of the first.
 */
export interface TokenTracer {
  /** Opens the CLIENT span of attempt `attempt` (1 for the first) at the connection's token endpoint. */
  tokenAttempt(connection: string, attempt: number): TokenAttemptSpan;
}

export interface TokenAttemptSpan {
  /**
   * Closes the span: `endpoint` is where the request went (discovered or configured), `error` the
   * failure (a TokenError carries the reason and the endpoint's status), absent on success.
   */
  end(endpoint: string | undefined, error?: unknown): void;
}
