/**
 * The fleet's news about shared entries, on one pub/sub channel: "stored" and "released" wake the
 * replicas waiting for a lease holder's result; "invalidated" makes every other replica drop its
 * in-process copies of a revoked token.
 */
import { randomUUID } from 'node:crypto';

export type EventType = 'stored' | 'released' | 'invalidated';

interface CacheEvent {
  readonly t: EventType;
  /** The entry's Redis key. */
  readonly k: string;
  /** The publishing replica, so it ignores its own invalidations. */
  readonly from: string;
}

export class CacheEvents {
  readonly #instance = randomUUID();
  /** Callbacks of replicas' callers waiting for news about an entry. */
  readonly #waiters = new Map<string, Set<() => void>>();
  /** Which local cache ids each entry serves (bounded by the routes of the config). */
  readonly #localIds = new Map<string, Set<string>>();

  constructor(
    readonly channel: string,
    /** Drops a token from this replica's in-process cache: another replica found it revoked. */
    private readonly forgetLocal: (id: string) => void,
  ) {}

  /** `entry` serves the local cache id `id`: an invalidation of it reaches that id. */
  serves(entry: string, id: string): void {
    let ids = this.#localIds.get(entry);
    if (ids === undefined) this.#localIds.set(entry, (ids = new Set()));
    ids.add(id);
  }

  /** The message to publish about `entry`. */
  message(t: EventType, entry: string): string {
    return JSON.stringify({ t, k: entry, from: this.#instance } satisfies CacheEvent);
  }

  /** Resolves on a message about `entry` or after `ms`, whichever comes first. */
  news(entry: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(entry);
      if (waiters === undefined) this.#waiters.set(entry, (waiters = new Set()));
      const set = waiters;
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.#waiters.get(entry) === set) this.#waiters.delete(entry);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
    });
  }

  /** Ends every wait (the store closes). */
  wakeAll(): void {
    for (const waiters of this.#waiters.values()) for (const wake of [...waiters]) wake();
  }

  /** The subscriber's 'message' listener. Whatever else arrives on the channel is ignored. */
  readonly onMessage = (channel: string, text: string): void => {
    if (channel !== this.channel) return;
    let event: Partial<CacheEvent>;
    try {
      event = JSON.parse(text) as Partial<CacheEvent>;
    } catch {
      return;
    }
    if (typeof event !== 'object' || event === null || typeof event.k !== 'string') return;
    if (event.t === 'invalidated') {
      if (event.from === this.#instance) return;
      for (const id of this.#localIds.get(event.k) ?? []) this.forgetLocal(id);
      return;
    }
    for (const wake of [...(this.#waiters.get(event.k) ?? [])]) wake();
  };
}
