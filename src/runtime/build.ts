/**
 * The one pipeline from config text to a config ready to run (docs/reloads.md):
 * read → parse → substitute → validate → resolve secrets → semantic checks → build the runtime.
 * `tokengate validate`, `serve` at start, every reload and every console edit call buildConfig();
 * only the commit (gateway/reload.ts) differs. Whatever validate accepts has therefore already been
 * built once, and a commit has nothing left that can fail.
 */
import { decodeEncryptionKey, ENCRYPTION_KEY_BYTES } from '../cache/crypto.js';
import { ConfigError } from '../config/errors.js';
import { checkConfigFile, checkConfigText, type Checked } from '../config/load.js';
import type { Report } from '../config/report.js';
import { serverTlsOptions } from '../config/tls.js';
import type { Config, LoadOptions } from '../config/types.js';
import type { UpstreamPool } from '../proxy/upstream-pool.js';
import type { ManagedKeys } from '../tokens/managed-keys.js';
import { buildAdminSignIn, buildConnections } from './connections.js';
import { buildRouteTable, type RouteTable } from './route-table.js';

/** A config and everything built from it: what a commit swaps in, in one step. */
export interface BuiltConfig {
  /** The config, its connections with their client authentication and DPoP signers. */
  readonly config: Config;
  readonly routeTable: RouteTable;
  /** The listener's certificate and key (a rotation applies on reload), undefined for plain HTTP. */
  readonly listenerTls: { readonly cert: string; readonly key: string } | undefined;
  /** The encryption key of the shared token cache, decoded. */
  readonly encryptionKey: Buffer | undefined;
}

export interface BuildOptions extends LoadOptions {
  /** The socket pools of the running config, reused where a route's upstream and TLS did not change. */
  readonly pools?: ReadonlyMap<string, UpstreamPool>;
  /** The running gateway's managed signing keys (privateKeyJwt.managed); without them such a connection cannot sign. */
  readonly managedKeys?: ManagedKeys;
}

/** The config file through every stage but the commit; throws a ConfigError and nothing else. */
export async function buildConfig(file: string, options: BuildOptions = {}): Promise<BuiltConfig> {
  return contained(file, async () => buildRuntime(await checkConfigFile(file, options), options));
}

/** As buildConfig, from text; `file` names it in problems and anchors relative secret files. */
export async function buildConfigText(text: string, file: string, options: BuildOptions = {}): Promise<BuiltConfig> {
  return contained(file, async () => buildRuntime(await checkConfigText(text, file, options), options));
}

/** buildConfig, keeping only the built Config (tests, `tokengate token`). */
export async function buildConfigOnly(file: string, options: LoadOptions = {}): Promise<Config> {
  return (await buildConfig(file, options)).config;
}

/** buildConfigText, keeping only the built Config. */
export async function buildConfigTextOnly(text: string, file: string, options: LoadOptions = {}): Promise<Config> {
  return (await buildConfigText(text, file, options)).config;
}

/** The last stage: every runtime object built from a checked config, each failure reported at its key path. */
function buildRuntime({ config: checked, problems }: Checked, options: BuildOptions): BuiltConfig {
  const report = problems.report;
  const config: Config = Object.freeze({
    ...checked,
    connections: buildConnections(checked, report, options.managedKeys),
    admin: buildAdminSignIn(checked.admin, report),
  });
  const encryptionKey = cacheEncryptionKey(config, report);
  const listenerTls = listenerCertificate(config, report);
  const routeTable = buildRouteTable(config, options.pools ?? new Map(), report);
  problems.throwIfAny();
  return { config, routeTable, listenerTls, encryptionKey };
}

function cacheEncryptionKey(config: Config, report: Report): Buffer | undefined {
  const secret = config.cache.encryptionKey;
  if (secret === undefined) return undefined;
  const key = decodeEncryptionKey(secret.reveal());
  if (key === undefined) {
    report(
      ['cache', 'encryptionKey', 'secret'],
      `secret "${secret.name}" must be ${ENCRYPTION_KEY_BYTES} bytes as 64 hex digits or base64 (e.g. openssl rand -base64 32)`,
    );
  }
  return key;
}

function listenerCertificate(config: Config, report: Report): BuiltConfig['listenerTls'] {
  if (config.listen.tls === undefined) return undefined;
  try {
    const { cert, key } = serverTlsOptions(config.listen.tls);
    return Object.freeze({ cert, key });
  } catch (error) {
    report(['listen', 'tls'], `cannot build the TLS context: ${(error as Error).message}`);
    return undefined;
  }
}

/**
 * Every stage reports what it finds as a ConfigError. Anything else thrown while building is a
 * bug, but still a config that cannot run: it is refused as one, never passed to the process.
 */
async function contained(file: string, build: () => Promise<BuiltConfig>): Promise<BuiltConfig> {
  try {
    return await build();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(file, [{ path: '', message: `cannot build the config: ${(error as Error).message ?? String(error)}` }]);
  }
}
