/**
 * Counts the request path keeps as plain numbers, read into their prom-client metrics at scrape
 * time (metrics.ts): a counter child hashes and checks its labels on every inc(), an addition does
 * not (docs/performance.md, "Hot path, round 3").
 */

/**
 * A count of things under way for one route, kept as a plain number so the request path does no
 * label lookup; the gauge reads it at scrape time. One holder per route name, kept across reloads.
 */
export interface InFlightCount {
  value: number;
}

/**
 * A count the request path adds to as a plain number: a prom-client counter child hashes and checks
 * its labels on every inc(). The counter takes what is new when it is read (its collect), so the
 * exposition is the same, and the work per request is an addition.
 */
export class PlainCounter {
  #counted = 0;
  #reported = 0;

  inc(): void {
    this.#counted++;
  }

  /** What was counted since the last call. */
  takeNew(): number {
    const fresh = this.#counted - this.#reported;
    this.#reported = this.#counted;
    return fresh;
  }
}

/**
 * A route's answered requests by method and status (tokengate_requests_total), picked without
 * building a key per request. One per route name, kept across reloads, as InFlightCount.
 */
export class RequestCounts {
  readonly #byMethod = new Map<string, Map<number, PlainCounter>>();

  count(method: string, status: number): void {
    let byStatus = this.#byMethod.get(method);
    if (byStatus === undefined) this.#byMethod.set(method, (byStatus = new Map<number, PlainCounter>()));
    let counter = byStatus.get(status);
    if (counter === undefined) byStatus.set(status, (counter = new PlainCounter()));
    counter.inc();
  }

  /** Hands over what was counted since the last call, by method and status. */
  report(add: (method: string, status: number, count: number) => void): void {
    for (const [method, byStatus] of this.#byMethod) {
      for (const [status, counter] of byStatus) {
        const fresh = counter.takeNew();
        if (fresh > 0) add(method, status, fresh);
      }
    }
  }
}
