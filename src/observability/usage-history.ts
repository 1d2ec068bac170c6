/**
 * Token requests and failures per minute over the last hour, per connection, for the console's
 * chart. Memory is bounded: one fixed ring of HISTORY_MINUTES slots per configured connection.
 */

export const HISTORY_MINUTES = 60;
const MINUTE_MS = 60_000;

/** One connection's ring: slot i holds minute `minutes[i]` (epoch minutes), reused once it is an hour old. */
class MinuteRing {
  readonly minutes = new Float64Array(HISTORY_MINUTES).fill(-1);
  readonly requests = new Uint32Array(HISTORY_MINUTES);
  readonly failures = new Uint32Array(HISTORY_MINUTES);

  #slot(minute: number): number {
    const slot = minute % HISTORY_MINUTES;
    if (this.minutes[slot] !== minute) {
      this.minutes[slot] = minute;
      this.requests[slot] = 0;
      this.failures[slot] = 0;
    }
    return slot;
  }

  add(kind: 'request' | 'failure', minute: number): void {
    const slot = this.#slot(minute);
    if (kind === 'request') this.requests[slot] = (this.requests[slot] ?? 0) + 1;
    else this.failures[slot] = (this.failures[slot] ?? 0) + 1;
  }

  /** Counts for minutes `first` … `first + HISTORY_MINUTES - 1`, zero where nothing happened. */
  series(first: number): { requests: number[]; failures: number[] } {
    const requests: number[] = [];
    const failures: number[] = [];
    for (let minute = first; minute < first + HISTORY_MINUTES; minute++) {
      const slot = minute % HISTORY_MINUTES;
      const current = this.minutes[slot] === minute;
      requests.push(current ? (this.requests[slot] ?? 0) : 0);
      failures.push(current ? (this.failures[slot] ?? 0) : 0);
    }
    return { requests, failures };
  }
}

export interface HistoryDocument {
  /** Start of each minute (epoch seconds), oldest first; the last one is the current minute. */
  minutes: number[];
  connections: Record<string, { requests: number[]; failures: number[] }>;
}

export class UsageHistory {
  readonly #rings = new Map<string, MinuteRing>();

  /** Keeps the rings of connections that stay; a removed connection's history goes with it. */
  keepOnly(keys: ReadonlySet<string>): void {
    for (const key of this.#rings.keys()) if (!keys.has(key)) this.#rings.delete(key);
    for (const key of keys) if (!this.#rings.has(key)) this.#rings.set(key, new MinuteRing());
  }

  add(connection: string, kind: 'request' | 'failure', now = Date.now()): void {
    // Only configured connections have a ring: the map cannot grow with what callers send.
    this.#rings.get(connection)?.add(kind, Math.floor(now / MINUTE_MS));
  }

  snapshot(now = Date.now()): HistoryDocument {
    const first = Math.floor(now / MINUTE_MS) - HISTORY_MINUTES + 1;
    const minutes = Array.from({ length: HISTORY_MINUTES }, (_, i) => ((first + i) * MINUTE_MS) / 1000);
    const connections: HistoryDocument['connections'] = {};
    for (const [key, ring] of this.#rings) connections[key] = ring.series(first);
    return { minutes, connections };
  }
}
