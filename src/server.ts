/**
 * Builds the listeners from a config, and starts, reloads and drains them.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { basename, dirname, resolve } from 'node:path';
import { createAdminApp } from './admin/app.js';
import { Metrics } from './observability/metrics.js';
import { createSessionStore, type SessionStore } from './admin/session-store.js';
import { Usage } from './observability/usage.js';
import { redisKeySets } from './cache/key-set-store.js';
import { RedisTokenStore } from './cache/redis-store.js';
import { ConfigError, formatProblem } from './config/errors.js';
import type { Config } from './config/types.js';
import { buildConfig } from './pipeline/build.js';
import type { Compiled } from './pipeline/compile.js';
import { configWarnings } from './pipeline/warnings.js';
import { createLogger, redactAlso, type Logger } from './observability/log.js';
import { keepTickShape } from './proxy/tick-shape.js';
import { configuredAccessHeaders } from './proxy/access.js';
import { bindRuntime } from './proxy/compile.js';
import { ProxyHandler } from './proxy/handler.js';
import { answerClientError } from './proxy/client-error.js';
import { isWebSocketUpgrade, serveAsOrdinary } from './proxy/upgrade.js';
import { destroyPool, type UpstreamPool } from './proxy/upstream-pool.js';
import { Telemetry } from './observability/token-observer.js';
import { ManagedKeys } from './tokens/managed-keys.js';
import { TokenProvider } from './tokens/provider.js';
import { resolveTracing, type ResolvedTracing } from './tracing/settings.js';
import { SecretFileWatch } from './config/secret-files.js';
import type { Tracing } from './tracing/tracing.js';

type TracingModule = typeof import('./tracing/tracing.js');

const WATCH_DEBOUNCE_MS = 200;
/**
 * How often the watcher checks that the config folder it watches is still the one on disk: a
 * watch on a deleted folder ends silently, and one on a recreated folder sees nothing.
 */
const WATCH_CHECK_INTERVAL_MS = 1_000;
/**
 * How often Node checks headersTimeout and requestTimeout (its default is 30 s, which would let a
 * slow client hold a socket far past a short headersTimeoutMs).
 */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1_000;

type ProxyServer = http.Server | https.Server;

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

export interface ReloadResult {
  ok: boolean;
  error?: ConfigError;
}

export class Gateway {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly usage: Usage;
  readonly provider: TokenProvider;
  #config: Config;
  readonly #handler: ProxyHandler;
  /** The upstream socket pools of the running config, by origin and TLS settings. */
  #pools: ReadonlyMap<string, UpstreamPool>;
  /** Pools a reload left unused, waiting for the old config's requests to finish (#retirePools). */
  readonly #retired = new Set<UpstreamPool>();
  readonly #proxyServer: ProxyServer;
  readonly #adminServer: http.Server;
  readonly #options: GatewayOptions;
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
  #watcher: FSWatcher | undefined;
  #watchCheck: NodeJS.Timeout | undefined;
  /** The `{ file: }` secrets followed while serving (with `watch`). */
  #secretFiles: SecretFileWatch | undefined;
  /** Reloads run one after another: a SIGHUP during a reload waits for it, then reads the file again. */
  #reloads: Promise<unknown> = Promise.resolve();

  private constructor(
    compiled: Compiled,
    options: GatewayOptions,
    log: Logger,
    tracing: ResolvedTracing,
    tracingModule: TracingModule | undefined,
    managedKeys: ManagedKeys,
  ) {
    const { config } = compiled;
    this.#managedKeys = managedKeys;
    redactAlso([...configuredAccessHeaders(config)]);
    this.#options = options;
    this.log = log;
    this.#config = config;
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
      if (compiled.encryptionKey !== undefined) managedKeys.setShared(redisKeySets(this.#store));
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
    this.#pools = compiled.routes.pools;
    this.#handler = new ProxyHandler(
      bindRuntime(config, compiled.routes, this.metrics, this.usage, log),
      this.provider,
      this.metrics,
      log,
      proxyListen.tls === undefined ? 'http' : 'https',
      this.#tracing,
    );
    const serverOptions: http.ServerOptions = {
      maxHeaderSize: proxyListen.maxHeaderBytes,
      headersTimeout: proxyListen.headersTimeoutMs,
      requestTimeout: proxyListen.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(MAX_TIMEOUT_CHECK_INTERVAL_MS, proxyListen.headersTimeoutMs),
    };
    this.#proxyServer =
      proxyListen.tls === undefined
        ? http.createServer(serverOptions, this.#handler.handle)
        : https.createServer({ ...serverOptions, ...compiled.listenerTls }, this.#handler.handle);
    this.#proxyServer.on('clientError', answerClientError);
    const proxyServer = this.#proxyServer;
    proxyServer.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (isWebSocketUpgrade(req)) this.#handler.upgrade(req, socket, head);
      else serveAsOrdinary(proxyServer, req, socket, head);
    });
    this.#sessions = createSessionStore(config, log);
    this.#adminServer = http.createServer(
      createAdminApp({
        metrics: this.metrics,
        usage: this.usage,
        provider: this.provider,
        config: () => this.#config,
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
    const compiled = await buildConfig(options.configFile, { env: options.env, managedKeys });
    const { config } = compiled;
    const tracing = resolveTracing(config.tracing, options.env ?? process.env);
    // The SDK is loaded only when tracing is on: a gateway without it carries none of its code.
    const tracingModule = tracing.settings === undefined ? undefined : await import('./tracing/tracing.js');
    const gateway = new Gateway(compiled, options, log, tracing, tracingModule, managedKeys);
    gateway.#warn(config);
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
      await gateway.#watch();
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
    return this.#config;
  }

  get proxyUrl(): string {
    return urlOf(this.#proxyServer);
  }

  get adminUrl(): string {
    return urlOf(this.#adminServer);
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
    const next = this.#reloads.then(() => this.#reloadOnce()).catch((error: unknown) => this.#failed(error));
    this.#reloads = next;
    return next;
  }

  async #reloadOnce(): Promise<ReloadResult> {
    let compiled: Compiled;
    try {
      compiled = await buildConfig(this.#options.configFile, {
        env: this.#options.env,
        pools: this.#pools,
        managedKeys: this.#managedKeys,
      });
    } catch (error) {
      // buildConfig throws ConfigError only (pipeline/build.ts turns every other error into one).
      if (error instanceof ConfigError) return this.#refused(error);
      return this.#failed(error);
    }
    if (this.#draining) return { ok: false };
    try {
      this.#commit(compiled);
    } catch (error) {
      // Not reachable by design (every fallible step ran in the compile stage); never let it end the process.
      return this.#failed(error);
    }
    return { ok: true };
  }

  /** A reload that failed for a reason other than a config problem: refused all the same, never thrown. */
  #failed(error: unknown): ReloadResult {
    this.metrics.configReloads.inc({ outcome: 'failure' });
    this.log.error({ event: 'config_reload_failed', err: error }, 'config reload failed');
    this.log.error({ event: 'config_reload_refused', file: this.#options.configFile, problems: 0 }, 'config reload refused');
    return { ok: false };
  }

  #refused(error: ConfigError): ReloadResult {
    this.metrics.configReloads.inc({ outcome: 'failure' });
    for (const problem of error.problems)
      this.log.error(
        { event: 'config_reload_problem', file: error.file, ...problem },
        `config reload refused: ${formatProblem(error.file, problem)}`,
      );
    // One line per refusal as well, after its problems: what a reader (or a test) waits for.
    this.log.error(
      { event: 'config_reload_refused', file: error.file, problems: error.problems.length },
      `config reload refused (${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}); the running config is unchanged`,
    );
    return { ok: false, error };
  }

  /** The swap: only steps that cannot fail on a compiled config, the route table last. */
  #commit(compiled: Compiled): void {
    const { config } = compiled;
    redactAlso([...configuredAccessHeaders(config)]);
    const before = startOnlySettings(this.#config);
    const after = startOnlySettings(config);
    const pending = Object.keys(after).filter((key) => after[key] !== before[key]);
    if (pending.length > 0) {
      this.log.warn({ event: 'config_restart_required', keys: pending }, `${pending.join(', ')} changed: takes effect on restart`);
    }
    // A rotated listener certificate applies to new connections at once (adding or removing listen.tls needs a restart).
    if (this.#proxyServer instanceof https.Server && compiled.listenerTls !== undefined)
      this.#proxyServer.setSecureContext(compiled.listenerTls);
    this.provider.update(config.connections.values());
    this.#store?.setEncryptionKey(compiled.encryptionKey);
    this.#sessions.setEncryptionKey(compiled.encryptionKey);
    void this.#secretFiles?.update(config.secretFiles);
    // New rings exist once this returns (their first keys follow; a signer waits for them).
    void this.#managedKeys.update(config.connections.values());
    this.usage.setConnections(config.connections.values());
    this.metrics.declareSeries(config);
    this.#handler.setRuntime(bindRuntime(config, compiled.routes, this.metrics, this.usage, this.log));
    this.#retirePools(compiled.routes.pools, config.listen.drainTimeoutMs);
    const keptRoutes = new Set(config.routes.map((route) => route.name));
    const removedRoutes = new Set(this.#config.routes.map((route) => route.name).filter((name) => !keptRoutes.has(name)));
    const removedConnections = new Set([...this.#config.connections.keys()].filter((key) => !config.connections.has(key)));
    this.metrics
      .forget(removedRoutes, removedConnections)
      .catch((error: unknown) => this.log.error({ err: error }, 'could not drop the metric series of removed routes and connections'));
    this.#config = config;
    this.metrics.configReloads.inc({ outcome: 'success' });
    this.#warn(config);
    this.log.info({ event: 'config_reloaded', routes: config.routes.length, connections: config.connections.size }, 'config reloaded');
  }

  /**
   * Closes the upstream socket pools no route of `runtime` uses any more (an upstream or its TLS
   * settings changed), once requests the old config started have had the drain time to finish:
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

  /**
   * Graceful shutdown: /readyz turns 503, the listener stops accepting, in-flight requests finish
   * (up to `deadlineMs`, by default listen.drainTimeoutMs), keep-alive sockets are closed.
   */
  async stop(deadlineMs = this.#config.listen.drainTimeoutMs): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#watcher?.close();
    clearInterval(this.#watchCheck);
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
    await Promise.all([...this.#pools.values(), ...this.#retired].map(destroyPool));
    this.log.info({ event: 'stopped' }, 'tokengate stopped');
  }

  /** The warnings `validate` prints too (pipeline/warnings.ts). */
  #warn(config: Config): void {
    for (const { event, message, fields } of configWarnings(config)) this.log.warn({ event, ...fields }, message);
  }

  /**
   * Reloads when the config file changes. The folder is watched, as editors and Kubernetes
   * ConfigMaps replace the file rather than write it; when the folder itself is deleted (or
   * replaced), the watch is armed again on the folder that takes its place.
   */
  async #watch(): Promise<void> {
    const file = resolve(this.#options.configFile);
    const dir = dirname(file);
    let timer: NodeJS.Timeout | undefined;
    let watched: string | undefined;
    let lastProblem: string | undefined;
    const identity = async (): Promise<string | undefined> => {
      try {
        const info = await stat(dir);
        return info.isDirectory() ? `${info.dev}:${info.ino}` : undefined;
      } catch {
        return undefined;
      }
    };
    const disarm = () => {
      this.#watcher?.close();
      this.#watcher = undefined;
      watched = undefined;
    };
    const arm = async (): Promise<boolean> => {
      const id = await identity();
      if (id === undefined || this.#draining) return false;
      try {
        const watcher = watch(dir, (_event, name) => {
          if (name !== null && name !== basename(file) && name !== '..data') return;
          clearTimeout(timer);
          timer = setTimeout(() => void this.reload(), WATCH_DEBOUNCE_MS);
        });
        watcher.on('error', (error) => {
          this.log.warn({ event: 'config_watch_error', err: error }, 'the config folder watch failed; arming it again');
          if (this.#watcher === watcher) disarm();
        });
        this.#watcher = watcher;
        watched = id;
        lastProblem = undefined;
        return true;
      } catch (error) {
        const problem = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        if (problem !== lastProblem) {
          this.log.warn({ event: 'config_watch_error', dir, err: error }, `cannot watch the config folder ${dir}: ${problem}`);
          lastProblem = problem;
        }
        return false;
      }
    };
    if (!(await arm())) {
      this.log.warn({ event: 'config_watch_lost', dir }, `cannot watch the config folder ${dir} yet; retrying`);
    }
    const check = async () => {
      const id = await identity();
      if (this.#draining || (id !== undefined && id === watched)) return;
      if (watched !== undefined) {
        disarm();
        this.log.warn({ event: 'config_watch_lost', dir }, `the config folder ${dir} is gone or was replaced; watching for it`);
      }
      if (await arm()) {
        this.log.info({ event: 'config_watch_rearmed', dir }, `watching the config folder ${dir} again`);
        // The file may have changed while nobody watched.
        await this.reload();
      }
    };
    let checking = false;
    this.#watchCheck = setInterval(() => {
      if (checking) return;
      checking = true;
      void check().finally(() => (checking = false));
    }, WATCH_CHECK_INTERVAL_MS);
    this.#watchCheck.unref();
  }
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

function listen(server: ProxyServer, host: string, port: number): Promise<void> {
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      done();
    });
  });
}

function urlOf(server: ProxyServer): string {
  const address = server.address() as AddressInfo | null;
  if (address === null) return '';
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${server instanceof https.Server ? 'https' : 'http'}://${host}:${address.port}`;
}
