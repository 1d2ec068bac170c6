/**
 * A circuit breaker per connection (Nygard, "Release It!"): closed while the token endpoint
 * answers; open for a while after repeated retryable failures, so a crowd of callers does not
 * keep hammering a server that is down; half-open after that, letting exactly one probe through.
 */

/** Consecutive retryable failures that open a connection's circuit. */
export const CIRCUIT_FAILURE_THRESHOLD = 5;
export const CIRCUIT_OPEN_MS = 5_000;
export const CIRCUIT_MAX_OPEN_MS = 60_000;

export interface CircuitOptions {
  failureThreshold: number;
  openMs: number;
  maxOpenMs: number;
}

/** Closed while openUntil is 0; open until openUntil; half-open after it, with one probe at a time. */
interface State {
  failures: number;
  openUntil: number;
  openMs: number;
  probing: boolean;
}

/** What a caller may do: go ahead (as the half-open probe, or not), or wait until `openUntil`. */
export type Admission = { readonly allowed: true; readonly probe: boolean } | { readonly allowed: false; readonly openUntil: number };

const PASS: Admission = Object.freeze({ allowed: true, probe: false });
const PROBE: Admission = Object.freeze({ allowed: true, probe: true });

export class Circuits {
  readonly #states = new Map<string, State>();
  readonly #options: CircuitOptions;

  constructor(options: CircuitOptions) {
    this.#options = options;
  }

  admit(connection: string, now = Date.now()): Admission {
    const state = this.#states.get(connection);
    if (state === undefined || state.openUntil === 0) return PASS;
    if (now >= state.openUntil && !state.probing) {
      state.probing = true;
      return PROBE;
    }
    return { allowed: false, openUntil: state.openUntil };
  }

  /** A retryable failure: counts towards opening the circuit; a failed probe reopens it for longer. */
  failure(connection: string, probe: boolean, retryAfterMs: number | undefined, now = Date.now()): void {
    const { failureThreshold, openMs, maxOpenMs } = this.#options;
    let state = this.#states.get(connection);
    if (state === undefined) {
      state = { failures: 0, openUntil: 0, openMs, probing: false };
      this.#states.set(connection, state);
    }
    state.failures++;
    if (probe) {
      state.probing = false;
      state.openMs = Math.min(state.openMs * 2, maxOpenMs);
      state.openUntil = now + state.openMs;
    } else if (state.openUntil === 0 && state.failures >= failureThreshold) {
      state.openUntil = now + state.openMs;
    }
    // RFC 9110 §10.2.3: the server said when to come back; nobody on this connection calls it before then.
    if (retryAfterMs !== undefined) state.openUntil = Math.max(state.openUntil, now + Math.min(retryAfterMs, maxOpenMs));
  }

  /** The server answered (a token, or an OAuth error): it is up. */
  success(connection: string): void {
    this.#states.delete(connection);
  }

  /** A probe that ended without the server's doing (a signing failure, say): free the slot so the circuit cannot stick. */
  release(connection: string, probe: boolean): void {
    const state = this.#states.get(connection);
    if (probe && state !== undefined) state.probing = false;
  }

  /** 0 when closed. */
  openUntil(connection: string): number {
    return this.#states.get(connection)?.openUntil ?? 0;
  }

  forget(connection: string): void {
    this.#states.delete(connection);
  }
}
