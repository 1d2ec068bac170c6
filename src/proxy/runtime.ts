/**
 * What the proxy serves a config with: its routes, each with everything a request needs, behind a
 * router. The proxy names what it reads; runtime/route-table.ts builds it (the route table at
 * every config build, its telemetry attached when a config is committed).
 */
import type { Histogram } from 'prom-client';
import type { DpopProofSigner, Config, Route } from '../config/types.js';
import type { AccessLog } from '../observability/log.js';
import type { InFlightCount, PlainCounter, RequestCounts } from '../observability/plain-counts.js';
import type { ConnectionStats } from '../observability/usage.js';
import type { Router } from '../routing/router.js';
import type { TokenKey } from '../tokens/types.js';
import type { AccessChecker } from './access.js';
import type { UpstreamPool } from './upstream-pool.js';

/** Where a route's requests go: the connection pool of its origin and TLS settings (http1/), fixed per config. */
export interface Upstream {
  readonly pool: UpstreamPool;
  /** The origin's parts, for traces. */
  readonly protocol: string;
  readonly hostname: string;
  readonly port: string;
}

/** A route built from the config: everything a request needs except this process's telemetry. */
export interface CompiledRoute {
  readonly name: string;
  readonly route: Route;
  readonly key: TokenKey | undefined;
  readonly upstreamHost: string;
  readonly basePath: string;
  readonly upstream: Upstream;
  readonly access: AccessChecker | undefined;
  /** Set when the route's connection binds its tokens with DPoP (RFC 9449). */
  readonly dpop: RouteDpop | undefined;
}

/** A DPoP route's signer and upstream origin (its nonces are kept per origin), and the last token's `ath`. */
export interface RouteDpop {
  readonly signer: DpopProofSigner;
  readonly origin: string;
  /** `ath` is a hash of the token: computed once per token, not per request. */
  athOf: { readonly token: string; readonly ath: string } | undefined;
}

/** A built route with this process's metric children, usage counters and access log attached. */
export interface RouteRuntime extends CompiledRoute {
  readonly duration: Histogram.Internal<'route'>;
  /** tokengate_upstream_requests_in_flight's count for this route. */
  readonly upstreamInFlight: InFlightCount;
  readonly hits: PlainCounter | undefined;
  readonly misses: PlainCounter | undefined;
  readonly stats: ConnectionStats | undefined;
  /** tokengate_requests_total's counts for this route. */
  readonly codes: RequestCounts;
  /** Writes this route's access lines: `event` and `route` are serialised once, here. */
  readonly accessLog: AccessLog;
}

/** A committed config as the proxy serves it: routes with everything resolved, ready for requests. */
export interface Runtime {
  readonly config: Config;
  readonly router: Router<RouteRuntime, Route>;
  /** The top-level access policy: it also guards requests that no route matches. */
  readonly access: AccessChecker | undefined;
  /** Every configured access header (configuredAccessHeaders): none is forwarded on any route. */
  readonly accessHeaders: ReadonlySet<string>;
}
