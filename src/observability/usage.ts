/**
 * Usage data per connection, the way operators read it under a "Usage Data" tab: token requests,
 * successes, failures by reason, cache hit ratio, expiry, and the most recent failures. Never a
 * token, secret or assertion: failures carry only sanitised text.
 */
import type { Connection } from '../config/load.js';
import type { TokenError } from '../errors/gateway.js';
import { sanitizeText } from '../errors/sanitize.js';
import { UsageHistory } from './usage-history.js';

export const RECENT_FAILURES = 100;
/** Longest `error_description` kept: enough to read the server's reason, not a place to store data. */
export const DESCRIPTION_MAX = 200;

/** One entry of the recent-failures ring buffer. Every key is always present (null when unknown). */
export interface FailureRecord {
  time: string;
  connection: string;
  /** null for background refreshes and the admin test button: no caller request was waiting. */
  route: string | null;
  code: string;
  reason: string;
  oauthError: string | null;
  /** The token endpoint's own words (RFC 6749 §5.2), control characters stripped, length-capped. */
  error_description: string | null;
  /** The gateway's safe summary, the `detail` the caller got. */
  detail: string;
  /** HTTP status of the token endpoint's answer; null when there was none (network, timeout). */
  httpStatus: number | null;
  requestId: string | null;
}

/** Counters a route's hot path increments directly (no lookups, no allocation). */
export class ConnectionStats {
  tokenRequests = 0;
  successes = 0;
  failures = 0;
  cacheHits = 0;
  cacheMisses = 0;
  readonly failuresByReason = new Map<string, number>();
  lastSuccessAt: string | undefined;
  lastFailureAt: string | undefined;
}

/** An ISO time, or null for a number no Date can hold (±8.64e15 ms): never a RangeError. */
function isoTime(ms: number): string | null {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

export class Usage {
  readonly #stats = new Map<string, ConnectionStats>();
  readonly #displayNames = new Map<string, string>();
  readonly #recent: FailureRecord[] = [];
  #next = 0;
  /** Per-minute counts over the last hour, for the console's chart. */
  readonly history = new UsageHistory();

  /** Keeps the counters of connections that stay; new ones start at zero. */
  setConnections(connections: Iterable<Connection>): void {
    this.#displayNames.clear();
    for (const connection of connections) {
      this.#displayNames.set(connection.key, connection.displayName);
      if (!this.#stats.has(connection.key)) this.#stats.set(connection.key, new ConnectionStats());
    }
    for (const key of this.#stats.keys()) if (!this.#displayNames.has(key)) this.#stats.delete(key);
    this.history.keepOnly(new Set(this.#displayNames.keys()));
  }

  stats(connection: string): ConnectionStats {
    let stats = this.#stats.get(connection);
    if (stats === undefined) {
      stats = new ConnectionStats();
      this.#stats.set(connection, stats);
    }
    return stats;
  }

  recordRequest(connection: string, outcome: 'success' | 'failure'): void {
    const stats = this.stats(connection);
    stats.tokenRequests++;
    this.history.add(connection, 'request');
    if (outcome === 'success') {
      stats.successes++;
      stats.lastSuccessAt = new Date().toISOString();
    }
  }

  /** Records a failure (counts and ring buffer) and returns the record, for the log line. */
  recordFailure(connection: string, error: TokenError, route: string | undefined, requestId: string | undefined): FailureRecord {
    const stats = this.stats(connection);
    stats.failures++;
    this.history.add(connection, 'failure');
    stats.failuresByReason.set(error.reason, (stats.failuresByReason.get(error.reason) ?? 0) + 1);
    const record: FailureRecord = {
      time: new Date().toISOString(),
      connection,
      route: route ?? null,
      code: error.code,
      reason: error.reason,
      oauthError: error.oauthError ?? null,
      error_description: sanitizeText(error.description, DESCRIPTION_MAX) ?? null,
      detail: error.detail,
      httpStatus: error.endpointStatus ?? null,
      requestId: requestId ?? null,
    };
    stats.lastFailureAt = record.time;
    if (this.#recent.length < RECENT_FAILURES) this.#recent.push(record);
    else this.#recent[this.#next] = record;
    this.#next = (this.#next + 1) % RECENT_FAILURES;
    return record;
  }

  /** The /usage document, newest failures first; `only` narrows it to one connection. */
  snapshot(expiries: Map<string, number>, only?: string, now = Date.now()) {
    const shown = [...this.#displayNames].filter(([key]) => only === undefined || key === only);
    const connections = shown.map(([key, displayName]) => {
      const stats = this.stats(key);
      const lookups = stats.cacheHits + stats.cacheMisses;
      // Whatever a cache holds, /usage answers: a value that is no finite time is no expiry.
      const seconds = expiries.get(key);
      const expiresIn = seconds !== undefined && Number.isFinite(seconds) ? seconds : undefined;
      return {
        connection: key,
        displayName,
        tokenRequests: stats.tokenRequests,
        successes: stats.successes,
        failures: stats.failures,
        failuresByReason: Object.fromEntries(stats.failuresByReason),
        cacheHits: stats.cacheHits,
        cacheMisses: stats.cacheMisses,
        cacheHitRatio: lookups === 0 ? null : Math.round((stats.cacheHits / lookups) * 10_000) / 10_000,
        tokenExpiresInSeconds: expiresIn === undefined ? null : Math.max(0, Math.floor(expiresIn)),
        tokenExpiresAt: expiresIn === undefined ? null : isoTime(now + expiresIn * 1000),
        lastSuccessAt: stats.lastSuccessAt ?? null,
        lastFailureAt: stats.lastFailureAt ?? null,
      };
    });
    const ordered = [...this.#recent.slice(this.#next), ...this.#recent.slice(0, this.#next)].reverse();
    return {
      connections,
      recentFailures: ordered.filter((f) => only === undefined || f.connection === only),
    };
  }
}
