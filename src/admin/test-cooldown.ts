/**
 * The admin test button's cool-down: its last outcome per connection and params is replayed for
 * TEST_COOLDOWN_MS, so whoever reaches the admin port cannot hammer a token endpoint with it. The
 * provider only provides (tokens/provider.ts fetchUncached: one shared request, through the
 * circuit); holding answers back from the button is the admin's business.
 */
import type { TokenResponse } from '../tokens/endpoint.js';
import type { UncachedTokens } from '../tokens/summary.js';

/** How long the admin test button replays its last outcome instead of asking again. */
export const TEST_COOLDOWN_MS = 1_000;

interface Remembered {
  /** When the outcome settled: the cool-down counts from the answer (infinite while it is pending). */
  at: number;
  /** The connection's fingerprint when asked: a reloaded connection is asked afresh. */
  fingerprint: string | undefined;
  outcome: Promise<TokenResponse>;
}

export class TestCooldown implements UncachedTokens {
  readonly #last = new Map<string, Remembered>();
  readonly #tokens: UncachedTokens;
  readonly #fingerprint: (connection: string) => string | undefined;
  readonly #cooldownMs: number;

  /** `fingerprint` names a connection's current config (Connection.fingerprint). */
  constructor(tokens: UncachedTokens, fingerprint: (connection: string) => string | undefined, cooldownMs = TEST_COOLDOWN_MS) {
    this.#tokens = tokens;
    this.#fingerprint = fingerprint;
    this.#cooldownMs = cooldownMs;
  }

  fetchUncached(connection: string, params: Readonly<Record<string, string>>): Promise<TokenResponse> {
    const now = Date.now();
    const id = `${connection}\u0000${JSON.stringify(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
    const fingerprint = this.#fingerprint(connection);
    const last = this.#last.get(id);
    if (last !== undefined && last.fingerprint === fingerprint && now - last.at < this.#cooldownMs) return last.outcome;
    for (const [key, entry] of this.#last) if (now - entry.at >= this.#cooldownMs) this.#last.delete(key);
    const outcome = this.#tokens.fetchUncached(connection, params);
    const remembered: Remembered = { at: Number.POSITIVE_INFINITY, fingerprint, outcome };
    this.#last.set(id, remembered);
    // A handled copy, so the memory itself never rejects unheard.
    outcome.then(
      () => (remembered.at = Date.now()),
      () => (remembered.at = Date.now()),
    );
    return outcome;
  }
}
