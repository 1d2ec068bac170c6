/**
 * Route compilation, in two steps. compileRoutes() builds everything that can fail (access
 * checkers, TLS contexts and socket pools, token keys) and runs inside the config pipeline, so
 * `validate` runs it too. bindRuntime() then attaches this process's metric children, usage
 * counters and access loggers: it cannot fail, and runs only when a config is committed.
 */
import http from 'node:http';
import https from 'node:https';
import type { Counter, Histogram } from 'prom-client';
import type { Metrics } from '../admin/metrics.js';
import type { ConnectionStats, Usage } from '../admin/usage.js';
import { ValueProblem } from '../config/checks.js';
import type { Report } from '../config/report.js';
import { keyPairId, outboundAgent, type TlsKeyPair, type TlsVerify } from '../config/tls.js';
import type { Config, Route } from '../config/types.js';
import { AccessLog, type Logger } from '../log.js';
import { Router } from '../routing/router.js';
import type { DpopProofSigner } from '../config/types.js';
import { tokenKey, type TokenKey } from '../tokens/provider.js';
import { AccessChecker } from './access.js';

/** Where a route's requests go: node's own client, its socket pool and the origin, fixed per config. */
export interface Upstream {
  readonly request: typeof http.request;
  readonly protocol: string;
  readonly hostname: string;
  readonly port: string;
  readonly agent: http.Agent;
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
  readonly hits: Counter.Internal | undefined;
  readonly misses: Counter.Internal | undefined;
  readonly stats: ConnectionStats | undefined;
  readonly codes: Map<string, Counter.Internal>;
  /** Writes this route's access lines: `event` and `route` are serialised once, here. */
  readonly accessLog: AccessLog;
}

export interface CompiledRoutes {
  /** By route index. */
  readonly routes: readonly CompiledRoute[];
  /** The top-level access policy: it also guards requests that no route matches. */
  readonly access: AccessChecker | undefined;
  /** The socket pools this config uses: those of the running config it can reuse, and new ones. */
  readonly agents: ReadonlyMap<string, http.Agent>;
}

/** A compiled config: routes with everything resolved, ready for requests. */
export interface Runtime {
  readonly config: Config;
  readonly router: Router<RouteRuntime>;
  /** The top-level access policy: it also guards requests that no route matches. */
  readonly access: AccessChecker | undefined;
}

const AGENT_OPTIONS = { keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' as const };

/**
 * Keep-alive agents shared by routes with the same upstream origin and the same TLS settings,
 * sized for a busy gateway. Trust and client certificate are part of the key: a route must never
 * reuse a socket that another route's CA verified or another route's certificate authenticated.
 */
function agentId(url: URL, tls: TlsVerify | undefined, credentials: TlsKeyPair | undefined): string {
  return [url.origin, tls?.id, credentials === undefined ? undefined : keyPairId(credentials)]
    .filter((part) => part !== undefined)
    .join(' ');
}

/**
 * Compiles every route; a route that cannot be built is reported at its key path. `running` are the
 * pools of the config being served: they are reused, never changed; new pools are only created.
 */
export function compileRoutes(config: Config, running: ReadonlyMap<string, http.Agent>, report: Report): CompiledRoutes {
  const agents = new Map<string, http.Agent>();
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
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const id = agentId(url, route.tls, route.tlsCredentials);
    let agent = agents.get(id) ?? running.get(id);
    if (agent === undefined) {
      try {
        agent = outboundAgent(url.protocol, AGENT_OPTIONS, route.tls, route.tlsCredentials);
      } catch (error) {
        // OpenSSL refused the CA bundle or the key pair (the message names neither's content).
        report(['routes', route.index, 'tls'], `cannot build the TLS context: ${(error as Error).message}`);
        agent = new http.Agent(AGENT_OPTIONS);
      }
    }
    agents.set(id, agent);
    const signer = connection === undefined ? undefined : config.connections.get(connection)?.dpopSigner;
    return {
      name: route.name,
      route,
      key: connection === undefined ? undefined : tokenKey(connection, route.effectiveParams, signer?.thumbprint),
      dpop: signer === undefined ? undefined : { signer, origin: url.origin, athOf: undefined },
      upstreamHost: url.host,
      basePath: url.pathname.replace(/\/+$/, ''),
      upstream: {
        request: url.protocol === 'https:' ? https.request : http.request,
        protocol: url.protocol,
        hostname,
        port: url.port || (url.protocol === 'https:' ? '443' : '80'),
        agent,
      },
      access: route.access === undefined ? defaultAccess : checker(route.access, ['routes', route.index, 'access']),
    };
  });
  return { routes, access: defaultAccess, agents };
}

/** Attaches this process's telemetry to compiled routes. Cannot fail: it runs inside a commit. */
export function bindRuntime(config: Config, compiled: CompiledRoutes, metrics: Metrics, usage: Usage, log: Logger): Runtime {
  const router = new Router<RouteRuntime>(config.routes, (route) => {
    const base = compiled.routes[config.routes.indexOf(route)]!;
    const connection = base.key?.connection;
    return {
      ...base,
      duration: metrics.requestDuration.labels({ route: route.name }),
      hits: connection === undefined ? undefined : metrics.cacheLookups.labels({ connection, result: 'hit' }),
      misses: connection === undefined ? undefined : metrics.cacheLookups.labels({ connection, result: 'miss' }),
      stats: connection === undefined ? undefined : usage.stats(connection),
      codes: new Map(),
      accessLog: new AccessLog(log, route.name),
    };
  });
  return { config, router, access: compiled.access };
}
