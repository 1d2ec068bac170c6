/**
 * Whether the shared cache answers (tokengate_cache_store_up), and the count and log of its
 * failures (tokengate_cache_errors_total): an outage says so once when it starts and once when it
 * ends, not once per call.
 */
import type { Logger } from '../observability/log.js';
import type { CacheOperation, Metrics } from '../observability/metrics.js';
import { damagedAnswer, errorCodeOf } from './store-errors.js';

export class StoreHealth {
  /** Whether the last call (or connection event) says the store answers. */
  #up = false;

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    metrics.setStoreUpSource(() => this.#up);
  }

  /** The store answered: the first answer after an outage (or at start) says so once. */
  answered(): void {
    if (this.#up) return;
    this.#up = true;
    this.log.info({ event: 'cache_store_up' }, 'shared token cache (Redis) answers: the fleet shares tokens again');
  }

  /**
   * Counts a failed call. A damaged answer or entry is always a warning (a bug or tampering); of an
   * outage's failures only the first is, the rest go to debug.
   */
  failed(operation: CacheOperation, error: unknown): void {
    this.metrics.cacheErrors.inc({ operation });
    const message = error instanceof Error ? error.message : String(error);
    if (damagedAnswer(error)) {
      this.log.warn({ event: 'cache_entry_unreadable', errorCode: errorCodeOf(error) }, message);
    } else if (!this.down(operation, error)) {
      this.log.debug(
        { event: 'cache_error', operation, errorCode: errorCodeOf(error), error: message },
        `shared token cache ${operation} failed`,
      );
    }
  }

  /** The store stopped answering: the first sign of an outage says so once; true if this was it. */
  down(operation: CacheOperation, error: unknown): boolean {
    if (!this.#up) return false;
    this.#up = false;
    this.log.warn(
      {
        event: 'cache_store_down',
        operation,
        errorCode: errorCodeOf(error),
        error: error instanceof Error ? error.message : String(error),
      },
      'shared token cache (Redis) unavailable: each replica fetches its own tokens until it is back',
    );
    return true;
  }

  /** A shutdown is no outage: no cache_store_down. */
  closed(): void {
    this.#up = false;
  }
}
