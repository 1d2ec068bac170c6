/**
 * Route compilation, in two steps. compileRoutes() builds everything that can fail (access
 * checkers, TLS contexts and socket pools, token keys) and runs inside the config pipeline, so
 * `validate` runs it too. bindRuntime() then attaches this process's metric children, usage
 * counters and access loggers: it cannot fail, and runs only when a config is committed.
 */
import type { Histogram } from 'prom-client';
import type { InFlightCount, Metrics, PlainCounter, RequestCounts } from '../observability/metrics.js';
import type { ConnectionStats, Usage } from '../observability/usage.js';
import { ValueProblem } from '../config/checks.js';
import type { Report } from '../config/report.js';
import type { Config, Route } from '../config/types.js';
import { AccessLog, type Logger } from '../observability/log.js';
import { Router } from '../routing/router.js';
import type { DpopProofSigner } from '../config/types.js';
import { tokenKey, type TokenKey } from '../tokens/types.js';
import { AccessChecker, configuredAccessHeaders } from './access.js';
import { poolId, upstreamPool, type UpstreamPool } from './upstream-pool.js';

/** Where a route's requests go: the undici pool of its origin and TLS settings, fixed per config. */
export interface Upstream {
  readonly pool: UpstreamPool;
  /** The origin's parts, for traces. */
  readonly protocol: string;
  readonly hostname: string;
  readonly port: string;
}

/** What compiling a route yields: everything a request needs except this process's telemetry. */
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

export interface CompiledRoutes {
  /** By route index. */
  readonly routes: readonly CompiledRoute[];
  /** The top-level access policy: it also guards requests that no route matches. */
  readonly access: AccessChecker | undefined;
  /** The socket pools this config uses: those of the running config it can reuse, and new ones. */
  readonly pools: ReadonlyMap<string, UpstreamPool>;
}

/** A compiled config: routes with everything resolved, ready for requests. */
export interface Runtime {
  readonly config: Config;
  readonly router: Router<RouteRuntime, Route>;
  /** The top-level access policy: it also guards requests that no route matches. */
  readonly access: AccessChecker | undefined;
  /** Every configured access header (configuredAccessHeaders): none is forwarded on any route. */
  readonly accessHeaders: ReadonlySet<string>;
}

/**
 * Compiles every route; a route that cannot be built is reported at its key path. `running` are the
 * pools of the config being served: they are reused, never changed; new pools are only created.
 */
export function compileRoutes(config: Config, running: ReadonlyMap<string, UpstreamPool>, report: Report): CompiledRoutes {
  const pools = new Map<string, UpstreamPool>();
  const checker = (policy: Route['access'], keyPath: PropertyKey[]): AccessChecker | undefined => {
    if (policy === undefined) return undefined;
    try {
      return new AccessChecker(policy);
    } catch (error) {
      if (!(error instanceof ValueProblem)) throw error;
      report([...keyPath, 'allowFrom', error.index ?? 0], error.message);
      return undefined;
    }
  };
  const defaultAccess = checker(config.access, ['access']);
  const routes = config.routes.map((route): CompiledRoute => {
    const url = route.upstreamUrl;
    const connection = route.auth.type === 'client-connection' ? route.auth.connection : undefined;
    const id = poolId(url, route.tls, route.tlsCredentials, route.timeouts.connectMs);
    let pool = pools.get(id) ?? running.get(id);
    if (pool === undefined) {
      try {
        pool = upstreamPool(url, route.tls, route.tlsCredentials, route.timeouts.connectMs);
      } catch (error) {
        // OpenSSL refused the CA bundle or the key pair (the message names neither's content).
        report(['routes', route.index, 'tls'], `cannot build the TLS context: ${(error as Error).message}`);
        // A stand-in that never connects: the reported problem fails the whole compile.
        pool = upstreamPool(url, undefined, undefined, route.timeouts.connectMs);
      }
    }
    pools.set(id, pool);
    const signer = connection === undefined ? undefined : config.connections.get(connection)?.dpopSigner;
    return {
      name: route.name,
      route,
      key: connection === undefined ? undefined : tokenKey(connection, route.effectiveParams, signer?.thumbprint),
      dpop: signer === undefined ? undefined : { signer, origin: url.origin, athOf: undefined },
      upstreamHost: url.host,
      basePath: url.pathname.replace(/\/+$/, ''),
      upstream: {
        pool,
        protocol: url.protocol,
        hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
        port: url.port || (url.protocol === 'https:' ? '443' : '80'),
      },
      access: route.access === undefined ? defaultAccess : checker(route.access, ['routes', route.index, 'access']),
    };
  });
  return { routes, access: defaultAccess, pools };
}

/** Attaches this process's telemetry to compiled routes. Cannot fail: it runs inside a commit. */
export function bindRuntime(config: Config, compiled: CompiledRoutes, metrics: Metrics, usage: Usage, log: Logger): Runtime {
  const router = new Router<RouteRuntime, Route>(config.routes, (route) => {
    const base = compiled.routes[config.routes.indexOf(route)]!;
    const connection = base.key?.connection;
    return {
      ...base,
      duration: metrics.requestDuration.labels({ route: route.name }),
      upstreamInFlight: metrics.upstreamInFlight(route.name),
      hits: connection === undefined ? undefined : metrics.cacheLookupCount(connection, 'hit'),
      misses: connection === undefined ? undefined : metrics.cacheLookupCount(connection, 'miss'),
      stats: connection === undefined ? undefined : usage.stats(connection),
      codes: metrics.requestCounts(route.name),
      accessLog: new AccessLog(log, route.name),
    };
  });
  return { config, router, access: compiled.access, accessHeaders: configuredAccessHeaders(config) };
}
