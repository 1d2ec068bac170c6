/**
 * The head's deadline (timeouts.responseMs) of the request waiting on one connection: one timer per
 * connection, re-armed only when it fires before the deadline of the request then waiting. A
 * request stores when its deadline falls (one clock read) instead of setting and clearing a timer
 * of its own, about 1 µs a request (docs/performance.md, "Hot path, round 4").
 */
export class HeadDeadline {
  readonly #expired: () => void;
  readonly #onTimer = (): void => this.#fired();
  /** When the deadline falls (performance.now()), 0 when none runs. */
  #at = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When #timer fires. */
  #timerAt = 0;

  /** `expired` is called once a deadline has passed without disarm(). */
  constructor(expired: () => void) {
    this.#expired = expired;
  }

  /** A deadline `ms` from now, replacing any before it. */
  arm(ms: number): void {
    const now = performance.now();
    this.#at = now + ms;
    // The timer already set fires no later than this deadline: it looks again then.
    if (this.#timer !== undefined && this.#timerAt <= this.#at) return;
    clearTimeout(this.#timer);
    this.#timerAt = this.#at;
    this.#timer = setTimeout(this.#onTimer, ms).unref();
  }

  /** The wait is over (a head came, or the request ended otherwise). */
  disarm(): void {
    this.#at = 0;
  }

  /** The connection is gone: no timer is left behind. */
  dispose(): void {
    this.#at = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fired(): void {
    this.#timer = undefined;
    if (this.#at === 0) return;
    const left = this.#at - performance.now();
    // Timers run on a millisecond clock: a deadline less than a millisecond away has passed.
    if (left < 1) {
      this.#at = 0;
      return this.#expired();
    }
    this.#timerAt = this.#at;
    this.#timer = setTimeout(this.#onTimer, Math.ceil(left)).unref();
  }
}
