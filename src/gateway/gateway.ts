/**
 * The gateway's composition: builds the listeners, the token provider, the shared cache and the
 * telemetry from a config, and starts and drains them. Reloads are gateway/reload.ts; following
 * the config file while serving is gateway/config-watcher.ts.
 */
import http from 'node:http';
import { createAdminApp } from '../admin/app.js';
import { createSessionStore, type SessionStore } from '../admin/session-store.js';
import { redisKeySets } from '../cache/key-set-store.js';
import { RedisTokenStore } from '../cache/redis-store.js';
import { SecretFileWatch } from '../config/secret-files.js';
import type { Config } from '../config/types.js';
import { createLogger, redactAlso, type Logger } from '../observability/log.js';
import { Metrics } from '../observability/metrics.js';
import { Telemetry } from '../observability/token-observer.js';
import { Usage } from '../observability/usage.js';
import { ProxyHandler } from '../proxy/handler.js';
import { keepTickShape } from '../proxy/tick-shape.js';
import { destroyPool } from '../proxy/upstream-pool.js';
import { buildConfig, type BuiltConfig } from '../runtime/build.js';
import { attachTelemetry } from '../runtime/route-table.js';
import { ManagedKeys } from '../tokens/managed-keys.js';
import { TokenProvider } from '../tokens/provider.js';
import { resolveTracing, type ResolvedTracing } from '../tracing/settings.js';
import type { Tracing } from '../tracing/tracing.js';
import { ConfigWatcher } from './config-watcher.js';
import { createProxyServer, listen, urlOf, type ProxyServer } from './listeners.js';
import { ConfigReloads, logConfigWarnings, type ReloadResult } from './reload.js';

export type { ReloadResult } from './reload.js';

type TracingModule = typeof import('../tracing/tracing.js');

export interface GatewayOptions {
  configFile: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Override the config's ports (tests use 0). */
  listenPort?: number;
  adminPort?: number;
  /** Reload when the config file or a `{ file: }` secret changes. */
  watch?: boolean;
}

export class Gateway {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly usage: Usage;
  readonly provider: TokenProvider;
  readonly #handler: ProxyHandler;
  /** The running config, and the reloads that replace it. */
  readonly #reloads: ConfigReloads;
  readonly #proxyServer: ProxyServer;
  readonly #adminServer: http.Server;
  /** The fleet's shared token cache (cache.store: redis); cache settings apply at start only. */
  readonly #store: RedisTokenStore | undefined;
  /** Console sessions (admin.sessions.store); the store applies at start only. */
  readonly #sessions: SessionStore;
  /** OpenTelemetry tracing, when on; its settings apply at start only. */
  readonly #tracing: Tracing | undefined;
  readonly #tracingWarnings: readonly string[];
  /** privateKeyJwt.managed: the keys made, published and rotated here (shared through Redis in a fleet). */
  readonly #managedKeys: ManagedKeys;
  #draining = false;
  /** The config file followed while serving (with `watch`). */
  #watcher: ConfigWatcher | undefined;
  /** The `{ file: }` secrets followed while serving (with `watch`). */
  #secretFiles: SecretFileWatch | undefined;

  private constructor(
    built: BuiltConfig,
    options: GatewayOptions,
    log: Logger,
    tracing: ResolvedTracing,
    tracingModule: TracingModule | undefined,
    managedKeys: ManagedKeys,
  ) {
    const { config } = built;
    this.#managedKeys = managedKeys;
    redactAlso([...built.routeTable.accessHeaders]);
    this.log = log;
    this.metrics = new Metrics();
    this.metrics.declareSeries(config);
    this.usage = new Usage();
    this.usage.setConnections(config.connections.values());
    this.provider = new TokenProvider(config.connections.values(), new Telemetry(this.metrics, this.usage, log));
    if (config.cache.store === 'redis') {
      const { topology, keyPrefix } = config.cache.redis;
      const forgetLocal = (id: string) => this.provider.forgetLocal(id);
      this.#store = new RedisTokenStore({
        topology,
        keyPrefix,
        encryptionKey: config.cache.encryptionKey,
        metrics: this.metrics,
        log,
        forgetLocal,
      });
      this.provider.setShared(this.#store);
      // The config refuses managed keys on Redis without an encryption key: private keys never rest in plaintext.
      if (built.encryptionKey !== undefined) managedKeys.setShared(redisKeySets(this.#store));
    }
    this.metrics.setExpirySource(() => this.provider.expiries());
    this.metrics.setTokenFetchSource(() => this.provider.fetchesInFlight());
    this.metrics.setWebSocketSource(() => this.#handler.openWebSockets());
    this.#tracingWarnings = tracing.warnings;
    this.#tracing =
      tracing.settings === undefined || tracingModule === undefined
        ? undefined
        : new tracingModule.Tracing(tracing.settings, this.metrics.traceExportFailures, log);
    const proxyListen = config.listen;
    this.#handler = new ProxyHandler(
      attachTelemetry(built.routeTable, this.metrics, this.usage, log),
      this.provider,
      this.metrics,
      log,
      proxyListen.tls === undefined ? 'http' : 'https',
      this.#tracing,
    );
    this.#proxyServer = createProxyServer(proxyListen, built.listenerTls, this.#handler);
    this.#sessions = createSessionStore(config, log);
    this.#reloads = new ConfigReloads(
      {
        configFile: options.configFile,
        env: options.env,
        log,
        metrics: this.metrics,
        usage: this.usage,
        provider: this.provider,
        handler: this.#handler,
        proxyServer: this.#proxyServer,
        store: this.#store,
        sessions: this.#sessions,
        managedKeys,
        secretFiles: () => this.#secretFiles,
        draining: () => this.#draining,
      },
      built,
    );
    this.#adminServer = http.createServer(
      createAdminApp({
        metrics: this.metrics,
        usage: this.usage,
        provider: this.provider,
        config: () => this.#reloads.config,
        ready: () => !this.#draining && this.#proxyServer.listening,
        log,
        configFile: options.configFile,
        env: options.env ?? process.env,
        reload: () => this.reload(),
        managedKeys,
        sessions: this.#sessions,
      }),
    );
  }

  /**
   * Builds the config through the whole pipeline (throws ConfigError before any listener starts)
   * and starts both listeners.
   */
  static async start(options: GatewayOptions): Promise<Gateway> {
    keepTickShape();
    const log = options.logger ?? createLogger();
    const managedKeys = new ManagedKeys({ log });
    const built = await buildConfig(options.configFile, { env: options.env, managedKeys });
    const { config } = built;
    const tracing = resolveTracing(config.tracing, options.env ?? process.env);
    // The SDK is loaded only when tracing is on: a gateway without it carries none of its code.
    const tracingModule = tracing.settings === undefined ? undefined : await import('../tracing/tracing.js');
    const gateway = new Gateway(built, options, log, tracing, tracingModule, managedKeys);
    logConfigWarnings(log, config);
    // Serving before Redis answers would only cost this replica its own token requests; wait a little.
    if (gateway.#store !== undefined && !(await gateway.#store.whenConnected()))
      log.warn({ event: 'cache_not_connected' }, 'starting without the shared token cache; it is used once Redis answers');
    // The JWKS serves the first keys before the first token request signs with them.
    await managedKeys.update(config.connections.values());
    const listening = await Promise.allSettled([
      listen(gateway.#proxyServer, config.listen.host, options.listenPort ?? config.listen.port),
      listen(gateway.#adminServer, config.admin.host, options.adminPort ?? config.admin.port),
    ]);
    const failed = listening.find((result) => result.status === 'rejected');
    if (failed !== undefined) {
      // The listener that did start, and Redis's reconnecting sockets, would keep a failed start alive.
      gateway.#proxyServer.close();
      gateway.#adminServer.close();
      gateway.provider.close();
      managedKeys.close();
      await gateway.#store?.close();
      await gateway.#sessions.close();
      await gateway.#tracing?.shutdown();
      throw failed.reason;
    }
    // For their whole life: an 'error' with no listener would end the process.
    for (const [name, server] of [
      ['proxy', gateway.#proxyServer],
      ['admin', gateway.#adminServer],
    ] as const) {
      server.on('error', (error) => log.error({ event: 'listener_error', listener: name, err: error }, `${name} listener error`));
    }
    if (options.watch === true) {
      gateway.#watcher = new ConfigWatcher({ configFile: options.configFile, log, reload: () => gateway.reload() });
      await gateway.#watcher.start();
      gateway.#secretFiles = new SecretFileWatch({ log, apply: async () => (await gateway.reload()).ok });
      // Followed from the values the config was built with, before the gateway counts as started.
      await gateway.#secretFiles.update(config.secretFiles);
    }
    for (const warning of gateway.#tracingWarnings) log.warn({ event: 'tracing_warning' }, warning);
    const tracer = gateway.#tracing;
    if (tracer !== undefined) {
      const { protocol, sampleRatio, serviceName } = tracer.settings;
      log.info(
        { event: 'tracing_enabled', endpoint: tracer.endpoint, protocol, sampleRatio, serviceName },
        `exporting traces to ${tracer.endpoint} (${protocol})`,
      );
    }
    log.info(
      {
        event: 'started',
        proxy: gateway.proxyUrl,
        admin: gateway.adminUrl,
        routes: config.routes.length,
        connections: config.connections.size,
      },
      `tokengate listening on ${gateway.proxyUrl} (admin ${gateway.adminUrl})`,
    );
    return gateway;
  }

  get config(): Config {
    return this.#reloads.config;
  }

  get proxyUrl(): string {
    return urlOf(this.#proxyServer);
  }

  get adminUrl(): string {
    return urlOf(this.#adminServer);
  }

  /** Reloads the config file: refused (counted and logged, never thrown) unless every stage succeeds (gateway/reload.ts). */
  reload(): Promise<ReloadResult> {
    return this.#reloads.reload();
  }

  /**
   * Graceful shutdown: /readyz turns 503, the listener stops accepting, in-flight requests finish
   * (up to `deadlineMs`, by default listen.drainTimeoutMs), keep-alive sockets are closed.
   */
  async stop(deadlineMs = this.#reloads.config.listen.drainTimeoutMs): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#watcher?.close();
    this.#secretFiles?.close();
    this.log.info({ event: 'draining', deadlineMs }, 'draining: finishing in-flight requests');
    const closed = new Promise<void>((done) => this.#proxyServer.close(() => done()));
    this.#proxyServer.closeIdleConnections();
    // Upgraded connections have no end of their own, and the server no longer counts them as its own.
    const deadline = setTimeout(() => {
      this.#proxyServer.closeAllConnections();
      this.#handler.closeUpgrades();
    }, deadlineMs);
    const idle = setInterval(() => this.#proxyServer.closeIdleConnections(), 100);
    await closed;
    clearTimeout(deadline);
    clearInterval(idle);
    this.#adminServer.closeAllConnections();
    await new Promise<void>((done) => this.#adminServer.close(() => done()));
    this.provider.close();
    this.#managedKeys.close();
    await this.#store?.close();
    await this.#sessions.close();
    // After the drain: the last requests' spans are in the final export.
    await this.#tracing?.shutdown();
    await Promise.all(this.#reloads.openPools.map(destroyPool));
    this.log.info({ event: 'stopped' }, 'tokengate stopped');
  }
}
