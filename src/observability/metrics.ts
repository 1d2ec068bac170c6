/**
 * Every tokengate metric (docs/observability.md), on a registry of our own. Label values are bounded: route names and
 * connection keys from the config, reason codes from fixed lists; never paths, tokens or client ids.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Config } from '../config/load.js';
import { ACCESS_DENIALS, TOKEN_FAILURE_REASONS, UPSTREAM_ERROR_REASONS } from '../errors/reasons.js';
import { PlainCounter, RequestCounts, type InFlightCount } from './plain-counts.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The `operation` label of tokengate_cache_errors_total (declared here, not in the cache, so neither imports the other). */
const CACHE_OPERATIONS = ['connect', 'subscribe', 'read', 'lease', 'write', 'invalidate', 'decode'] as const;
export type CacheOperation = (typeof CACHE_OPERATIONS)[number];
/**
 * prom-client default metrics that are gauges named `_total`, against the Prometheus naming rules
 * (`promtool check metrics` flags them). Left out so the exposition lints clean;
 * tokengate_process_open_fds tells the same story about leaked handles.
 */
const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export type CacheLookupResult = 'hit' | 'miss';

export class Metrics {
  readonly registry = new Registry();
  #expirySource: () => Map<string, number> = () => new Map();
  #storeUpSource: (() => boolean) | undefined;
  /** The metrics with a route or connection label: forget() drops their series. */
  readonly #perRouteOrConnection: Array<Counter<string> | Histogram<string>> = [];
  /** The routes and connections of the config being served (declareSeries): their gauges show 0 too. */
  #configuredRoutes: readonly string[] = [];
  #configuredConnections: readonly string[] = [];
  readonly #upstreamInFlight = new Map<string, InFlightCount>();
  readonly #requestCounts = new Map<string, RequestCounts>();
  /** tokengate_token_cache_lookups_total's counts, by connection and result, kept across reloads. */
  readonly #cacheLookupCounts = new Map<string, { connection: string; result: CacheLookupResult; counter: PlainCounter }>();
  #tokenFetchSource: () => Map<string, number> = () => new Map();

  readonly tokenRequests = this.#counter('tokengate_token_requests_total', 'Requests sent to token endpoints, by outcome', [
    'connection',
    'outcome',
  ]);
  readonly tokenFailures = this.#counter(
    'tokengate_token_failures_total',
    'Failed token acquisitions by reason (OAuth error code, http_status, timeout, network, invalid_response, circuit_open)',
    ['connection', 'reason'],
  );
  readonly tokenDuration = this.#histogram('tokengate_token_request_duration_seconds', 'Duration of token endpoint requests', [
    'connection',
  ]);
  readonly cacheLookups = this.#counter(
    'tokengate_token_cache_lookups_total',
    'Token cache lookups on the request path, by result',
    ['connection', 'result'],
    () => {
      for (const { connection, result, counter } of this.#cacheLookupCounts.values()) {
        const fresh = counter.takeNew();
        if (fresh > 0) this.cacheLookups.inc({ connection, result }, fresh);
      }
    },
  );
  readonly tokenExpiresIn = new Gauge({
    name: 'tokengate_token_expires_in_seconds',
    help: "Seconds until the soonest expiry among the connection's cached tokens",
    labelNames: ['connection'] as const,
    registers: [this.registry],
    collect: () => {
      this.tokenExpiresIn.reset();
      // A scrape never fails on a stored value: whatever is not a finite number of seconds is left out.
      let expiries: Map<string, number>;
      try {
        expiries = this.#expirySource();
      } catch {
        return;
      }
      for (const [connection, seconds] of expiries)
        if (Number.isFinite(seconds)) this.tokenExpiresIn.set({ connection }, Math.round(seconds * 1000) / 1000);
    },
  });
  readonly requests = this.#counter(
    'tokengate_requests_total',
    'Requests answered, by route, method and status sent to the caller (route="unmatched" for 404s)',
    ['route', 'method', 'code'],
    () => {
      for (const [route, counts] of this.#requestCounts)
        counts.report((method, status, count) => this.requests.inc({ route, method, code: String(status) }, count));
    },
  );
  readonly requestDuration = this.#histogram('tokengate_request_duration_seconds', 'Time from request to response headers sent, by route', [
    'route',
  ]);
  readonly authFailures = this.#counter(
    'tokengate_auth_failures_total',
    'Caller requests that could not be authenticated upstream, by route, connection and reason',
    ['route', 'connection', 'reason'],
  );
  readonly upstreamErrors = this.#counter(
    'tokengate_upstream_errors_total',
    'Upstream failures, by route and reason (unavailable, timeout, reset)',
    ['route', 'reason'],
  );
  readonly configReloads = this.#counter('tokengate_config_reloads_total', 'Config reloads, by outcome', ['outcome']);
  readonly accessDenied = this.#counter(
    'tokengate_access_denied_total',
    'Callers refused by the access policy, by route and reason (missing_key, wrong_key, address)',
    ['route', 'reason'],
  );
  readonly dpopNonceRetries = this.#counter(
    'tokengate_dpop_nonce_retries_total',
    'Requests sent again with a server-provided DPoP nonce (use_dpop_nonce), by connection and server (token_endpoint, upstream)',
    ['connection', 'server'],
  );
  readonly dpopProofFailures = this.#counter(
    'tokengate_dpop_proof_failures_total',
    'DPoP proofs a server refused (invalid_dpop_proof from the token endpoint or the upstream), by connection',
    ['connection'],
  );
  readonly traceExportFailures = this.#counter(
    'tokengate_trace_export_failures_total',
    'Span batches that could not be exported to the OpenTelemetry collector (their spans are dropped)',
  );
  /**
   * A route whose upstream answers slowly, or not at all, piles up here: requests wait for a
   * connection (up to 512 per upstream) and for an answer. Each ends within the route's time-outs;
   * a caller who hangs up ends its request, but one still waiting for a connection only when
   * connecting fails or succeeds. A reload-removed route shows until its last request ends.
   */
  readonly upstreamRequestsInFlight = new Gauge({
    name: 'tokengate_upstream_requests_in_flight',
    help: 'Requests sent to the upstream, or waiting for a connection to it, whose answer has not ended or failed yet, by route',
    labelNames: ['route'] as const,
    registers: [this.registry],
    collect: () => {
      const gauge = this.upstreamRequestsInFlight;
      gauge.reset();
      for (const route of this.#configuredRoutes) gauge.set({ route }, this.#upstreamInFlight.get(route)?.value ?? 0);
      for (const [route, count] of this.#upstreamInFlight) if (count.value !== 0) gauge.set({ route }, count.value);
    },
  });
  readonly tokenFetchesInFlight = new Gauge({
    name: 'tokengate_token_fetches_in_flight',
    help: 'Token fetches under way (one per token key, with its retries; refreshes and admin tests included), by connection',
    labelNames: ['connection'] as const,
    registers: [this.registry],
    collect: () => {
      const gauge = this.tokenFetchesInFlight;
      gauge.reset();
      let fetches: Map<string, number>;
      try {
        fetches = this.#tokenFetchSource();
      } catch {
        return;
      }
      for (const connection of this.#configuredConnections) gauge.set({ connection }, fetches.get(connection) ?? 0);
      for (const [connection, count] of fetches) gauge.set({ connection }, count);
    },
  });
  readonly secretFallbacks = this.#counter(
    'tokengate_secret_fallbacks_total',
    'Token requests sent again with clientSecret.previous after the current secret was refused ' +
      '(invalid_client, unauthorized_client), by connection',
    ['connection'],
  );
  /**
   * Read at scrape time, as the expiry gauge is: the series are exactly the routes that accept
   * WebSocket now (at 0 when none is open) and any route, removed by a reload, whose connections
   * are still open. Nothing to forget on a reload, nothing that a late close could count below 0.
   */
  readonly websocketConnections = new Gauge({
    name: 'tokengate_websocket_connections',
    help: 'WebSocket connections open through the gateway, by route',
    labelNames: ['route'] as const,
    registers: [this.registry],
    collect: () => {
      this.websocketConnections.reset();
      for (const [route, open] of this.#webSocketSource()) this.websocketConnections.set({ route }, open);
    },
  });
  #webSocketSource: () => ReadonlyMap<string, number> = () => new Map();
  readonly cacheErrors = this.#counter('tokengate_cache_errors_total', 'Shared token cache (Redis) calls that failed, by operation', [
    'operation',
  ]);
  /** Absent without a shared store (cache.store: memory): a 0 there would read as an outage. */
  readonly cacheStoreUp = new Gauge({
    name: 'tokengate_cache_store_up',
    help: 'Whether the shared token cache (Redis) answers: 1 yes, 0 no (each replica then fetches its own tokens)',
    registers: [this.registry],
    collect: () => {
      this.cacheStoreUp.reset();
      const up = this.#storeUpSource?.();
      if (up !== undefined) this.cacheStoreUp.set(up ? 1 : 0);
    },
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tokengate_' });
    for (const name of MISNAMED_DEFAULT_METRICS) this.registry.removeSingleMetric(`tokengate_${name}`);
    for (const outcome of ['success', 'failure']) this.configReloads.inc({ outcome }, 0);
  }

  /**
   * Creates the failure counters of every configured connection and route at zero (start and
   * reload). A series that first appears at 1 has no earlier sample, so `increase()` and `rate()`
   * in an alert rule would never see that first failure. Bounded: the reasons are fixed lists.
   */
  declareSeries(config: Config): void {
    this.#configuredRoutes = config.routes.map((route) => route.name);
    this.#configuredConnections = [...config.connections.keys()];
    for (const connection of config.connections.keys()) {
      for (const outcome of ['success', 'failure']) this.tokenRequests.inc({ connection, outcome }, 0);
      for (const reason of TOKEN_FAILURE_REASONS) this.tokenFailures.inc({ connection, reason }, 0);
      for (const result of ['hit', 'miss']) this.cacheLookups.inc({ connection, result }, 0);
    }
    for (const connection of config.connections.values()) {
      if (connection.auth.previous !== undefined) this.secretFallbacks.inc({ connection: connection.key }, 0);
      if (connection.dpop === undefined) continue;
      for (const server of ['token_endpoint', 'upstream']) this.dpopNonceRetries.inc({ connection: connection.key, server }, 0);
      this.dpopProofFailures.inc({ connection: connection.key }, 0);
    }
    for (const route of config.routes) {
      for (const reason of UPSTREAM_ERROR_REASONS) this.upstreamErrors.inc({ route: route.name, reason }, 0);
      const guarded = route.access !== undefined || config.access !== undefined;
      if (guarded) for (const reason of ACCESS_DENIALS) this.accessDenied.inc({ route: route.name, reason }, 0);
    }
    if (config.cache.store === 'redis') for (const operation of CACHE_OPERATIONS) this.cacheErrors.inc({ operation }, 0);
  }

  /**
   * Drops every series of the routes and connections a reload removed, so that dashboards stop
   * listing them instead of drawing flat lines until the next restart. A request still finishing
   * on the old config may bring one back; it then counts what really happened.
   */
  async forget(routes: ReadonlySet<string>, connections: ReadonlySet<string>): Promise<void> {
    if (routes.size === 0 && connections.size === 0) return;
    for (const metric of this.#perRouteOrConnection) {
      const removed = new Set<string>();
      for (const { labels } of (await metric.get()).values) {
        const gone =
          (labels.route !== undefined && routes.has(String(labels.route))) ||
          (labels.connection !== undefined && connections.has(String(labels.connection)));
        if (!gone) continue;
        // A histogram lists each series once per bucket (le) and again for _sum and _count.
        const { le: _bucket, ...series } = labels;
        const id = JSON.stringify(series);
        if (removed.has(id)) continue;
        removed.add(id);
        metric.remove(series);
      }
    }
  }

  #counter<L extends string>(name: string, help: string, labelNames: readonly L[] = [], collect?: () => void): Counter<L> {
    return this.#track(new Counter({ name, help, labelNames, registers: [this.registry], ...(collect && { collect }) }), labelNames);
  }

  #histogram<L extends string>(name: string, help: string, labelNames: readonly L[]): Histogram<L> {
    return this.#track(new Histogram({ name, help, labelNames, buckets: LATENCY_BUCKETS, registers: [this.registry] }), labelNames);
  }

  #track<M extends Counter<string> | Histogram<string>>(metric: M, labelNames: readonly string[]): M {
    if (labelNames.includes('route') || labelNames.includes('connection')) this.#perRouteOrConnection.push(metric);
    return metric;
  }

  /** The count of a route's upstream requests under way, for the request path to change. */
  upstreamInFlight(route: string): InFlightCount {
    let count = this.#upstreamInFlight.get(route);
    if (count === undefined) {
      count = { value: 0 };
      this.#upstreamInFlight.set(route, count);
    }
    return count;
  }

  /** A route's answered requests, for the request path to count (tokengate_requests_total). */
  requestCounts(route: string): RequestCounts {
    let counts = this.#requestCounts.get(route);
    if (counts === undefined) {
      counts = new RequestCounts();
      this.#requestCounts.set(route, counts);
    }
    return counts;
  }

  /** A connection's token cache hits or misses, for the request path to count (tokengate_token_cache_lookups_total). */
  cacheLookupCount(connection: string, result: CacheLookupResult): PlainCounter {
    const key = JSON.stringify([connection, result]);
    let entry = this.#cacheLookupCounts.get(key);
    if (entry === undefined) {
      entry = { connection, result, counter: new PlainCounter() };
      this.#cacheLookupCounts.set(key, entry);
    }
    return entry.counter;
  }

  /** Where the token fetch gauge reads from at scrape time: fetches under way by connection. */
  setTokenFetchSource(source: () => Map<string, number>): void {
    this.#tokenFetchSource = source;
  }

  /** Where tokengate_websocket_connections reads from at scrape time: open connections by route. */
  setWebSocketSource(source: () => ReadonlyMap<string, number>): void {
    this.#webSocketSource = source;
  }

  /** Where the expiry gauge reads from at scrape time (no per-request cost). */
  setExpirySource(source: () => Map<string, number>): void {
    this.#expirySource = source;
  }

  /** The shared token cache's state, read at each scrape (cache.store: redis). */
  setStoreUpSource(source: () => boolean): void {
    this.#storeUpSource = source;
  }
}
