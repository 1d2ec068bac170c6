/**
 * Rejection memory: an OAuth error (RFC 6749 §5.2) is the server's answer, and asking again at once
 * would get the same one. For a short while the next callers get that answer without a request.
 */
import type { TokenError } from '../errors/gateway.js';

/** How long a rejected token request (4xx OAuth error) is answered from memory. */
export const REJECTION_MEMORY_MS = 5_000;

export class Rejections {
  readonly #remembered = new Map<string, { error: TokenError; until: number }>();
  readonly #ms: number;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /** The remembered error for a token key id, if still fresh. Errors are immutable, so it can be shared. */
  recall(id: string, now = Date.now()): TokenError | undefined {
    const entry = this.#remembered.get(id);
    if (entry === undefined) return undefined;
    if (now < entry.until) return entry.error;
    this.#remembered.delete(id);
    return undefined;
  }

  remember(id: string, error: TokenError, now = Date.now()): void {
    this.#remembered.set(id, { error, until: now + this.#ms });
  }

  /** Drops every remembered rejection whose id starts with `prefix` (a connection's keys). */
  forgetPrefix(prefix: string): void {
    for (const id of this.#remembered.keys()) if (id.startsWith(prefix)) this.#remembered.delete(id);
  }
}
