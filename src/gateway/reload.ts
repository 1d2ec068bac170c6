/**
 * The reload transaction: reloads queue one after another; each runs the config file through the
 * whole pipeline (runtime/build.ts) and, only if every stage succeeds, commits it in one step.
 * The commit attaches this process's telemetry and swaps: nothing in it can fail on a built config.
 * Socket pools the new config no longer uses are closed once the old config's requests have drained.
 */
import https from 'node:https';
import type http from 'node:http';
import type { SessionStore } from '../admin/session-store.js';
import type { RedisTokenStore } from '../cache/redis-store.js';
import { ConfigError, formatProblem } from '../config/errors.js';
import type { SecretFileWatch } from '../config/secret-files.js';
import type { Config } from '../config/types.js';
import { configWarnings } from '../config/warnings.js';
import { redactAlso, type Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Usage } from '../observability/usage.js';
import type { ProxyHandler } from '../proxy/handler.js';
import { destroyPool, type UpstreamPool } from '../proxy/upstream-pool.js';
import { buildConfig, type BuiltConfig } from '../runtime/build.js';
import { attachTelemetry } from '../runtime/route-table.js';
import type { ManagedKeys } from '../tokens/managed-keys.js';
import type { TokenProvider } from '../tokens/provider.js';

export interface ReloadResult {
  ok: boolean;
  error?: ConfigError;
}

/** The parts of a running gateway a commit updates. */
export interface RunningGateway {
  readonly configFile: string;
  readonly env: NodeJS.ProcessEnv | undefined;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly usage: Usage;
  readonly provider: TokenProvider;
  readonly handler: ProxyHandler;
  readonly proxyServer: http.Server | https.Server;
  readonly store: RedisTokenStore | undefined;
  readonly sessions: SessionStore;
  readonly managedKeys: ManagedKeys;
  /** The `{ file: }` secrets followed while serving (with `watch`), once started. */
  secretFiles(): SecretFileWatch | undefined;
  /** Once the gateway drains, a reload that finishes building is not committed. */
  draining(): boolean;
}

export class ConfigReloads {
  readonly #gateway: RunningGateway;
  #config: Config;
  /** The upstream socket pools of the running config, by origin and TLS settings. */
  #pools: ReadonlyMap<string, UpstreamPool>;
  /** Pools a reload left unused, waiting for the old config's requests to finish (#retirePools). */
  readonly #retired = new Set<UpstreamPool>();
  /** Reloads run one after another: a SIGHUP during a reload waits for it, then reads the file again. */
  #queue: Promise<unknown> = Promise.resolve();

  /** `running` is the config the gateway started with, already attached to its handler. */
  constructor(gateway: RunningGateway, running: BuiltConfig) {
    this.#gateway = gateway;
    this.#config = running.config;
    this.#pools = running.routeTable.pools;
  }

  get config(): Config {
    return this.#config;
  }

  /** Every socket pool still open: the running config's, and those retired but not yet closed. */
  get openPools(): UpstreamPool[] {
    return [...this.#pools.values(), ...this.#retired];
  }

  /**
   * Runs the config file through the whole pipeline again and, only if every stage succeeds,
   * commits it in one step (in-flight requests finish on the old routes; tokens of unchanged
   * connections are kept). Anything that goes wrong before the commit leaves the running config
   * untouched and is a refused reload: counted, logged at its file and key path, never thrown.
   */
  reload(): Promise<ReloadResult> {
    // The SIGHUP handler and the file watcher drop the promise: whatever escapes #reloadOnce (a
    // logger that throws, say) is a failed reload too, and the queue never holds a rejection.
    const next = this.#queue.then(() => this.#reloadOnce()).catch((error: unknown) => this.#failed(error));
    this.#queue = next;
    return next;
  }

  async #reloadOnce(): Promise<ReloadResult> {
    const gateway = this.#gateway;
    let built: BuiltConfig;
    try {
      built = await buildConfig(gateway.configFile, { env: gateway.env, pools: this.#pools, managedKeys: gateway.managedKeys });
    } catch (error) {
      // buildConfig throws ConfigError only (runtime/build.ts turns every other error into one).
      if (error instanceof ConfigError) return this.#refused(error);
      return this.#failed(error);
    }
    if (gateway.draining()) return { ok: false };
    try {
      this.#commit(built);
    } catch (error) {
      // Not reachable by design (every fallible step ran in the build); never let it end the process.
      return this.#failed(error);
    }
    return { ok: true };
  }

  /** A reload that failed for a reason other than a config problem: refused all the same, never thrown. */
  #failed(error: unknown): ReloadResult {
    const { metrics, log, configFile } = this.#gateway;
    metrics.configReloads.inc({ outcome: 'failure' });
    log.error({ event: 'config_reload_failed', err: error }, 'config reload failed');
    log.error({ event: 'config_reload_refused', file: configFile, problems: 0 }, 'config reload refused');
    return { ok: false };
  }

  #refused(error: ConfigError): ReloadResult {
    const { metrics, log } = this.#gateway;
    metrics.configReloads.inc({ outcome: 'failure' });
    for (const problem of error.problems) {
      const line = `config reload refused: ${formatProblem(error.file, problem)}`;
      log.error({ event: 'config_reload_problem', file: error.file, ...problem }, line);
    }
    // One line per refusal as well, after its problems: what a reader (or a test) waits for.
    log.error(
      { event: 'config_reload_refused', file: error.file, problems: error.problems.length },
      `config reload refused (${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}); the running config is unchanged`,
    );
    return { ok: false, error };
  }

  /** The swap: only steps that cannot fail on a built config, the route table last. */
  #commit(built: BuiltConfig): void {
    const { config, routeTable } = built;
    const { log, metrics, usage, provider, handler, proxyServer, store, sessions, managedKeys } = this.#gateway;
    redactAlso([...routeTable.accessHeaders]);
    const before = startOnlySettings(this.#config);
    const after = startOnlySettings(config);
    const pending = Object.keys(after).filter((key) => after[key] !== before[key]);
    if (pending.length > 0) {
      log.warn({ event: 'config_restart_required', keys: pending }, `${pending.join(', ')} changed: takes effect on restart`);
    }
    // A rotated listener certificate applies to new connections at once (adding or removing listen.tls needs a restart).
    if (proxyServer instanceof https.Server && built.listenerTls !== undefined) proxyServer.setSecureContext(built.listenerTls);
    provider.update(config.connections.values());
    store?.setEncryptionKey(built.encryptionKey);
    sessions.setEncryptionKey(built.encryptionKey);
    void this.#gateway.secretFiles()?.update(config.secretFiles);
    // New rings exist once this returns (their first keys follow; a signer waits for them).
    void managedKeys.update(config.connections.values());
    usage.setConnections(config.connections.values());
    metrics.declareSeries(config);
    handler.setRuntime(attachTelemetry(routeTable, metrics, usage, log));
    this.#retirePools(routeTable.pools, config.listen.drainTimeoutMs);
    const keptRoutes = new Set(config.routes.map((route) => route.name));
    const removedRoutes = new Set(this.#config.routes.map((route) => route.name).filter((name) => !keptRoutes.has(name)));
    const removedConnections = new Set([...this.#config.connections.keys()].filter((key) => !config.connections.has(key)));
    metrics
      .forget(removedRoutes, removedConnections)
      .catch((error: unknown) => log.error({ err: error }, 'could not drop the metric series of removed routes and connections'));
    this.#config = config;
    metrics.configReloads.inc({ outcome: 'success' });
    logConfigWarnings(log, config);
    log.info({ event: 'config_reloaded', routes: config.routes.length, connections: config.connections.size }, 'config reloaded');
  }

  /**
   * Closes the upstream socket pools no route of the new config uses any more (an upstream or its
   * TLS settings changed), once requests the old config started have had the drain time to finish:
   * destroy() would cut them short, and idle keep-alive sockets would otherwise stay open for good.
   */
  #retirePools(next: ReadonlyMap<string, UpstreamPool>, afterMs: number): void {
    const used = new Set(next.values());
    const previous = this.#pools;
    this.#pools = next;
    for (const pool of previous.values()) {
      if (used.has(pool)) continue;
      this.#retired.add(pool);
      setTimeout(() => {
        this.#retired.delete(pool);
        void destroyPool(pool);
      }, afterMs).unref();
    }
  }
}

/** The warnings `validate` prints too (config/warnings.ts), logged at start and on every reload. */
export function logConfigWarnings(log: Logger, config: Config): void {
  for (const { event, message, fields } of configWarnings(config)) log.warn({ event, ...fields }, message);
}

/** What the listeners and the shared cache were built with: a reload cannot change these, a restart does. */
function startOnlySettings({ listen, admin, cache, tracing }: Config): Record<string, string | number> {
  return {
    'listen.host': listen.host,
    'listen.port': listen.port,
    'listen.headersTimeoutMs': listen.headersTimeoutMs,
    'listen.requestTimeoutMs': listen.requestTimeoutMs,
    'listen.maxHeaderBytes': listen.maxHeaderBytes,
    'listen.tls': listen.tls === undefined ? 'off' : 'on',
    'admin.host': admin.host,
    'admin.port': admin.port,
    'admin.sessions.store': admin.sessions.store,
    'cache.store': cache.store,
    'cache.redis': JSON.stringify(cache.redis.topology),
    'cache.redis.keyPrefix': cache.redis.keyPrefix,
    tracing: JSON.stringify(tracing ?? {}),
  };
}
