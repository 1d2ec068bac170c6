/**
 * The route table, in two steps. buildRouteTable() builds everything that can fail (access
 * checkers, TLS contexts and socket pools, token keys) and the router over it, inside the config
 * build, so `validate` runs it too. attachTelemetry() then gives each route this process's metric
 * children, usage counters and access logger: it cannot fail, and runs only when a config is committed.
 */
import { ValueProblem } from '../config/checks.js';
import type { Report } from '../config/report.js';
import type { Config, Route } from '../config/types.js';
import { AccessLog, type Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Usage } from '../observability/usage.js';
import { AccessChecker, configuredAccessHeaders } from '../proxy/access.js';
import type { CompiledRoute, RouteRuntime, Runtime } from '../proxy/runtime.js';
import { poolId, upstreamPool, type UpstreamPool } from '../proxy/upstream-pool.js';
import { Router } from '../routing/router.js';
import { tokenKey } from '../tokens/types.js';

/** Every route of a config built, behind its router: what the proxy serves once telemetry is attached. */
export interface RouteTable {
  readonly config: Config;
  readonly router: Router<CompiledRoute, Route>;
  /** The top-level access policy: it also guards requests that no route matches. */
  readonly access: AccessChecker | undefined;
  /** Every configured access header (configuredAccessHeaders): none is forwarded on any route. */
  readonly accessHeaders: ReadonlySet<string>;
  /** The socket pools this config uses: those of the running config it can reuse, and new ones. */
  readonly pools: ReadonlyMap<string, UpstreamPool>;
}

/**
 * Builds every route; a route that cannot be built is reported at its key path. `running` are the
 * pools of the config being served: they are reused, never changed; new pools are only created.
 */
export function buildRouteTable(config: Config, running: ReadonlyMap<string, UpstreamPool>, report: Report): RouteTable {
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
  const router = new Router<CompiledRoute, Route>(config.routes, (route): CompiledRoute => {
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
        // A stand-in that never connects: the reported problem fails the whole build.
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
  return { config, router, access: defaultAccess, accessHeaders: configuredAccessHeaders(config), pools };
}

/** Attaches this process's telemetry to a built route table. Cannot fail: it runs inside a commit. */
export function attachTelemetry(table: RouteTable, metrics: Metrics, usage: Usage, log: Logger): Runtime {
  const router = table.router.withData((built, route): RouteRuntime => {
    const connection = built.key?.connection;
    return {
      ...built,
      duration: metrics.requestDuration.labels({ route: route.name }),
      upstreamInFlight: metrics.upstreamInFlight(route.name),
      hits: connection === undefined ? undefined : metrics.cacheLookupCount(connection, 'hit'),
      misses: connection === undefined ? undefined : metrics.cacheLookupCount(connection, 'miss'),
      stats: connection === undefined ? undefined : usage.stats(connection),
      codes: metrics.requestCounts(route.name),
      accessLog: new AccessLog(log, route.name),
    };
  });
  return { config: table.config, router, access: table.access, accessHeaders: table.accessHeaders };
}
