/**
 * When to try a token request again: only retryable failures, with capped exponential backoff and
 * full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"), never past the caller's
 * budget, and never before a `Retry-After` the server sent (RFC 9110 §10.2.3).
 */
import type { TokenError } from '../errors/gateway.js';

export const BACKOFF_BASE_MS = 100;
export const BACKOFF_CAP_MS = 2_000;

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly retryAfterCapMs: number;
}

/**
 * When attempt `attempt + 1` may start after `error`, or undefined to give up: the error is final,
 * the attempts are spent, the server asked for a longer pause than the cap, or the pause would end
 * past `deadline`.
 */
export function nextAttemptAt(
  attempt: number,
  error: TokenError,
  policy: RetryPolicy,
  deadline: number,
  now = Date.now(),
): number | undefined {
  if (!error.retryable || attempt >= policy.maxAttempts) return undefined;
  const retryAfterMs = error.retryAfter === undefined ? 0 : error.retryAfter * 1000;
  if (retryAfterMs > policy.retryAfterCapMs) return undefined;
  const backoff = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  const resumeAt = now + Math.max(backoff, retryAfterMs);
  return resumeAt >= deadline ? undefined : resumeAt;
}
