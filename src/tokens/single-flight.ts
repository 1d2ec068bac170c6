/**
 * One in-flight call per key: callers that ask while it runs share its promise. The entry is
 * removed when the call settles (finally), so a failure is never served to later callers from
 * here; the call itself must settle (see deadline.ts), or the key would be stuck.
 */
export class SingleFlight<T> {
  readonly #inflight = new Map<string, Promise<T>>();

  has(key: string): boolean {
    return this.#inflight.has(key);
  }

  /** The running call for `key`, or a new one from `start`. */
  run(key: string, start: () => Promise<T>): Promise<T> {
    const existing = this.#inflight.get(key);
    if (existing !== undefined) return existing;
    // The executor turns a synchronous throw of `start` into a rejection, so the entry is cleared then too.
    const flight = new Promise<T>((started) => started(start())).finally(() => {
      if (this.#inflight.get(key) === flight) this.#inflight.delete(key);
    });
    this.#inflight.set(key, flight);
    return flight;
  }

  /** The keys with a call under way. */
  keys(): IterableIterator<string> {
    return this.#inflight.keys();
  }

  get size(): number {
    return this.#inflight.size;
  }
}
