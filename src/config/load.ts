/**
 * YAML → one validated, typed, frozen Config. Every problem is collected and reported at once,
 * each with the file, the key path and, where the YAML tells us, line and column.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, visit, type Alias, type Document } from 'yaml';
import type { z } from 'zod';
import { decodeEncryptionKey, ENCRYPTION_KEY_BYTES } from '../cache/crypto.js';
import {
  clientSecretBasic,
  clientSecretJwt,
  clientSecretPost,
  CredentialProblem,
  privateKeyJwt,
  tlsClientAuth,
  type ClientAuth,
} from '../tokens/client-auth.js';
import { normalizePath } from '../routing/path.js';
import { ConfigError, formatPath, type ConfigProblem } from './errors.js';
import {
  configSchema,
  connectionSchema,
  routeSchema,
  secretSchema,
  type RawAccess,
  type RawConfig,
  type RawConnection,
  type RawRoute,
  type RawTlsVerify,
} from './schema.js';
import { Secret } from './secret.js';
import { caBundleProblem, keyPairProblem, tlsVerify, type TlsKeyPair, type TlsVerify } from './tls.js';

export interface AccessPolicy {
  /** Lower-cased header name carrying the API key. */
  readonly header: string;
  readonly apiKeys: readonly Secret[];
  readonly allowFrom: readonly string[];
}

export interface Connection {
  readonly key: string;
  readonly displayName: string;
  readonly clientId: string;
  readonly tokenUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly auth: ClientAuth;
  /** Verification of the token endpoint's certificate; undefined for the system roots. */
  readonly tls: TlsVerify | undefined;
  readonly params: Readonly<Record<string, string>>;
  readonly timeouts: RawConnection['timeouts'];
  readonly retry: RawConnection['retry'];
  readonly token: RawConnection['token'];
  /** Changes whenever anything that could change the tokens changes (config or secret values). */
  readonly fingerprint: string;
  /** Hash of the authorization server and client id: namespaces shared cache entries. */
  readonly identity: string;
}

export interface Route extends Omit<RawRoute, 'access' | 'tls'> {
  readonly index: number;
  readonly upstreamUrl: URL;
  /** The connection's params overlaid with the route's (the token cache key uses these). */
  readonly effectiveParams: Readonly<Record<string, string>>;
  readonly access: AccessPolicy | undefined;
  /** Verification of an https: upstream's certificate; undefined for the system roots. */
  readonly tls: TlsVerify | undefined;
  /** The client certificate presented to the upstream (mutual TLS), if any. */
  readonly tlsCredentials: TlsKeyPair | undefined;
}

export interface Config {
  readonly file: string;
  readonly listen: Omit<RawConfig['listen'], 'tls'> & { readonly tls: TlsKeyPair | undefined };
  readonly admin: Omit<RawConfig['admin'], 'auth'> & {
    /** The admin keys, resolved; undefined when admin.auth is not set (nothing may change the config). */
    readonly auth: { readonly apiKeys: readonly Secret[] } | undefined;
  };
  readonly logging: RawConfig['logging'];
  readonly cache: Omit<RawConfig['cache'], 'encryptionKey'> & { readonly encryptionKey: Secret | undefined };
  readonly access: AccessPolicy | undefined;
  readonly connections: ReadonlyMap<string, Connection>;
  readonly routes: readonly Route[];
  /** Things worth a warning at start-up and on reload (inline secrets, ...). */
  readonly warnings: readonly string[];
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname.endsWith('.localhost');
}

export function loadConfig(file: string, options: LoadOptions = {}): Config {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [
      { path: '', message: `cannot read the config file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` },
    ]);
  }
  return parseConfig(text, file, options);
}

/** Parses config text; `file` names it in problems and anchors relative secret files. */
export function parseConfig(text: string, file: string, options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((error) => {
        // prettyErrors: false leaves error.linePos unset; the offset is always there.
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return { path: '', message: `YAML syntax error: ${error.message.split('\n')[0] ?? error.code}`, line, column: col };
      }),
    );
  }
  const located = (problem: Omit<ConfigProblem, 'line' | 'column'>, keyPath: readonly PropertyKey[]): ConfigProblem =>
    withPosition(problem, doc, lineCounter, keyPath);

  const problems: ConfigProblem[] = [];
  const report: Report = (keyPath, message) => problems.push(located({ path: formatPath(keyPath), message }, keyPath));
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (error) {
    throw new ConfigError(file, [unreadableYaml(error, doc, lineCounter)]);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError(file, [{ path: '', message: 'the config must be a YAML mapping (key: value) at the top level' }]);
  }
  const cycle = selfReference(data);
  if (cycle !== undefined) {
    throw new ConfigError(file, [
      located({ path: formatPath(cycle), message: 'an alias refers to a node that contains it (the value would be infinite)' }, cycle),
    ]);
  }
  data = substituteVariables(data, [], env, report);

  const parsed = configSchema.safeParse(data);
  let raw: RawConfig;
  let routeList: ReadonlyArray<RawRoute | undefined>;
  if (parsed.success) {
    raw = parsed.data;
    routeList = raw.routes;
  } else {
    for (const issue of parsed.error.issues) {
      // One problem per unknown key, located at the key itself rather than at its parent.
      const keyPaths = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path, key]) : [issue.path];
      for (const keyPath of keyPaths) report(keyPath, describeIssue(issue));
    }
    // Carry on with what is valid, so the cross-reference problems are reported in the same run.
    const salvaged = salvage(data as Record<string, unknown>);
    if (salvaged === undefined) throw new ConfigError(file, problems);
    ({ raw, routeList } = salvaged);
  }
  // Names declared in the file, valid or not: a reference to an invalid entry is not "unknown".
  const declaredSecrets = new Set(Object.keys(asRecord((data as Record<string, unknown>).secrets)));
  const declaredConnections = new Set(Object.keys(asRecord((data as Record<string, unknown>).connections)));
  const secrets = resolveSecrets(raw, file, env, report);
  const warnings: string[] = [];
  for (const [name, def] of Object.entries(raw.secrets)) {
    if ('value' in def) warnings.push(`secrets.${name} is an inline value; use env or file outside development`);
  }

  const secretRef = (name: string, keyPath: PropertyKey[]): Secret | undefined => {
    if (!declaredSecrets.has(name)) {
      report(keyPath, `unknown secret "${name}"; define it under secrets`);
      return undefined;
    }
    return secrets.get(name);
  };

  const access = (policy: RawAccess | undefined, keyPath: PropertyKey[]): AccessPolicy | undefined => {
    if (policy === undefined) return undefined;
    const apiKeys = (policy.apiKeys ?? []).map((k, i) => secretRef(k.secret, [...keyPath, 'apiKeys', i, 'secret']));
    (policy.allowFrom ?? []).forEach((cidr, i) => {
      if (!isCidr(cidr)) report([...keyPath, 'allowFrom', i], `"${cidr}" is not an IPv4 or IPv6 CIDR block`);
    });
    if (apiKeys.length === 0 && (policy.allowFrom ?? []).length === 0) {
      report(keyPath, 'an access policy needs apiKeys, allowFrom, or both');
    }
    return Object.freeze({
      header: policy.header.toLowerCase(),
      apiKeys: Object.freeze(apiKeys.filter((s): s is Secret => s !== undefined)),
      allowFrom: Object.freeze([...(policy.allowFrom ?? [])]),
    });
  };

  const verify: TlsVerifyRef = (settings, keyPath) => {
    if (settings === undefined) return undefined;
    let ca: Secret | undefined;
    if (settings.ca !== undefined) {
      if (settings.insecureSkipVerify)
        report([...keyPath, 'ca'], 'a CA bundle has no effect with insecureSkipVerify: true; remove one of them');
      ca = secretRef(settings.ca, [...keyPath, 'ca']);
      const problem = ca === undefined ? undefined : caBundleProblem(ca.reveal());
      if (problem !== undefined) report([...keyPath, 'ca'], problem);
    }
    if (settings.insecureSkipVerify) {
      warnings.push(
        `SECURITY: ${formatPath(keyPath)}.insecureSkipVerify is true: the server's certificate is not verified, ` +
          'so anyone on the network path can impersonate it',
      );
    }
    return tlsVerify(ca, settings.insecureSkipVerify);
  };

  /** A certificate and key named together (both or neither), checked against each other. */
  const keyPair = (
    names: { certificate?: string | undefined; key?: string | undefined } | undefined,
    keyPath: PropertyKey[],
  ): TlsKeyPair | undefined => {
    if (names?.certificate === undefined && names?.key === undefined) return undefined;
    if (names.certificate === undefined || names.key === undefined) {
      report(keyPath, 'set both certificate and key, or neither');
      return undefined;
    }
    const certificate = secretRef(names.certificate, [...keyPath, 'certificate']);
    const key = secretRef(names.key, [...keyPath, 'key']);
    if (certificate === undefined || key === undefined) return undefined;
    const pair = Object.freeze({ certificate, key });
    const problem = keyPairProblem(pair);
    if (problem !== undefined) report([...keyPath, problem.field], problem.message);
    return pair;
  };

  const connections = new Map<string, Connection>();
  for (const [key, conn] of Object.entries(raw.connections)) {
    const built = buildConnection(key, conn, secretRef, verify, report);
    if (built !== undefined) connections.set(key, built);
  }

  const routes: Route[] = [];
  const seenNames = new Map<string, number>();
  routeList.forEach((route, index) => {
    if (route === undefined) return;
    const keyPath = ['routes', index];
    const earlier = seenNames.get(route.name);
    if (earlier !== undefined) {
      report([...keyPath, 'name'], `duplicate route name "${route.name}" (also routes[${earlier}])`);
    }
    seenNames.set(route.name, index);
    const upstreamUrl = new URL(route.upstream);
    if (upstreamUrl.search !== '' || upstreamUrl.hash !== '' || upstreamUrl.username !== '' || upstreamUrl.password !== '') {
      report([...keyPath, 'upstream'], 'an upstream is a base URL: no query, fragment or user info');
    }
    if (route.tls !== undefined && upstreamUrl.protocol !== 'https:') report([...keyPath, 'tls'], 'applies to an https: upstream only');
    let effectiveParams: Record<string, string> = {};
    if (route.auth.type === 'client-connection') {
      const name = route.auth.connection;
      if (name === undefined) {
        problems.push(
          located({ path: formatPath([...keyPath, 'auth', 'connection']), message: 'required when auth.type is client-connection' }, [
            ...keyPath,
            'auth',
          ]),
        );
      } else if (!declaredConnections.has(name)) {
        report([...keyPath, 'auth', 'connection'], `unknown connection "${name}"; known: ${[...declaredConnections].join(', ') || 'none'}`);
      } else {
        effectiveParams = { ...connections.get(name)?.params, ...stringParams(route.auth.params) };
      }
    } else if (route.auth.connection !== undefined || route.auth.params !== undefined) {
      report([...keyPath, 'auth'], 'auth.type none takes no connection or params');
    }
    const pathPrefix = route.match.pathPrefix.replace(/\/+$/, '') || '/';
    // Requests are matched after normalisation (routing/path.ts); a prefix that normalisation would change never matches.
    if (normalizePath(pathPrefix) !== pathPrefix) {
      report(
        [...keyPath, 'match', 'pathPrefix'],
        'must be a normalised path: no . or .. segments, no empty segments (//), no encoded / or \\, no control characters',
      );
    }
    routes.push(
      deepFreeze({
        ...route,
        match: { ...route.match, pathPrefix, methods: route.match.methods?.map((m) => m.toUpperCase()) },
        index,
        upstreamUrl,
        effectiveParams,
        access: access(route.access, [...keyPath, 'access']),
        tls: verify(route.tls, [...keyPath, 'tls']),
        tlsCredentials: keyPair(route.tls, [...keyPath, 'tls']),
      }),
    );
  });
  const topAccess = access(raw.access, ['access']);
  const adminKeys = raw.admin.auth?.apiKeys.map((k, i) => secretRef(k.secret, ['admin', 'auth', 'apiKeys', i, 'secret']));

  let encryptionKey: Secret | undefined;
  if (raw.cache.encryptionKey !== undefined) {
    const keyPath = ['cache', 'encryptionKey', 'secret'];
    encryptionKey = secretRef(raw.cache.encryptionKey.secret, keyPath);
    if (encryptionKey !== undefined && decodeEncryptionKey(encryptionKey.reveal()) === undefined) {
      report(
        keyPath,
        `secret "${encryptionKey.name}" must be ${ENCRYPTION_KEY_BYTES} bytes as 64 hex digits or base64 (e.g. openssl rand -base64 32)`,
      );
    }
  }
  // Checked here, not by ioredis at start: its "Invalid URL" names no key, and the URL often holds a password.
  if (!/^rediss?:\/\//.test(raw.cache.redis.url) || !URL.canParse(raw.cache.redis.url)) {
    problems.push(located({ path: 'cache.redis.url', message: 'must be a valid redis:// or rediss:// URL' }, ['cache', 'redis', 'url']));
  }
  if (raw.cache.store === 'redis' && raw.cache.encryptionKey === undefined && !raw.cache.allowPlaintext) {
    problems.push(
      located(
        {
          path: 'cache.encryptionKey',
          message: 'store: redis keeps tokens at rest: set encryptionKey, or allowPlaintext: true to accept plaintext tokens in Redis',
        },
        ['cache'],
      ),
    );
  }

  const listen = raw.listen;
  // Node refuses to start a server whose headers time-out exceeds its request time-out.
  if (listen.headersTimeoutMs > listen.requestTimeoutMs)
    report(['listen', 'headersTimeoutMs'], `must not exceed requestTimeoutMs (${listen.requestTimeoutMs})`);
  const listenTls = keyPair(listen.tls, ['listen', 'tls']);

  if (problems.length > 0) throw new ConfigError(file, problems);
  return Object.freeze({
    file,
    listen: Object.freeze({ ...listen, tls: listenTls }),
    admin: Object.freeze({
      ...raw.admin,
      auth: adminKeys === undefined ? undefined : Object.freeze({ apiKeys: Object.freeze(adminKeys.filter((k) => k !== undefined)) }),
    }),
    logging: Object.freeze(raw.logging),
    cache: Object.freeze({ ...raw.cache, redis: Object.freeze(raw.cache.redis), encryptionKey }),
    access: topAccess,
    connections,
    routes: Object.freeze(routes),
    warnings: Object.freeze(warnings),
  });
}

type Report = (keyPath: PropertyKey[], message: string) => void;
type TlsVerifyRef = (settings: RawTlsVerify | undefined, keyPath: PropertyKey[]) => TlsVerify | undefined;

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * After a schema failure: each section and entry that is valid on its own (invalid sections take
 * their defaults, invalid secrets and connections are left out, invalid routes keep their index
 * as undefined). Only used to find more problems; such a config is never returned. Undefined
 * when an invalid section has no default to stand in for it.
 */
function salvage(data: Record<string, unknown>): { raw: RawConfig; routeList: ReadonlyArray<RawRoute | undefined> } | undefined {
  const sections: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(configSchema.shape)) {
    const result = schema.safeParse(data[key]);
    const fallback = result.success ? result : schema.safeParse(undefined);
    if (!fallback.success) return undefined;
    sections[key] = fallback.data;
  }
  const validEntries = <T>(value: unknown, schema: z.ZodType<T>): Record<string, T> => {
    const out: Record<string, T> = {};
    for (const [name, entry] of Object.entries(asRecord(value))) {
      const result = schema.safeParse(entry);
      if (result.success) out[name] = result.data;
    }
    return out;
  };
  sections.secrets = validEntries(data.secrets, secretSchema);
  sections.connections = validEntries(data.connections, connectionSchema);
  const routeList = Array.isArray(data.routes) ? data.routes.map((route) => routeSchema.safeParse(route).data) : [];
  return { raw: sections as RawConfig, routeList };
}

function buildConnection(
  key: string,
  conn: RawConnection,
  secretRef: (name: string, keyPath: PropertyKey[]) => Secret | undefined,
  verify: TlsVerifyRef,
  report: Report,
): Connection | undefined {
  const base: PropertyKey[] = ['connections', key];
  let problemCount = 0;
  const counted: Report = (p, m) => {
    problemCount++;
    report(p, m);
  };
  if ((conn.tokenUrl === undefined) === (conn.issuer === undefined)) {
    counted(base, 'set exactly one of tokenUrl and issuer');
  }
  for (const field of ['tokenUrl', 'issuer'] as const) {
    const value = conn[field];
    if (value === undefined) continue;
    const url = new URL(value);
    if (url.username !== '' || url.password !== '') {
      // Connection URLs show up in /connections and in error details that reach callers.
      counted([...base, field], 'must not carry user info (user:password@); the client authenticates with clientSecret or privateKeyJwt');
    }
    if (url.protocol !== 'https:' && !isLoopbackHost(url.hostname) && !conn.allowInsecureHttp) {
      counted(
        [...base, field],
        `must be https: (the client's credentials travel on it) unless the host is loopback or allowInsecureHttp: true is set`,
      );
    }
  }
  if ([conn.clientSecret, conn.privateKeyJwt, conn.tlsClientAuth].filter((method) => method !== undefined).length !== 1) {
    counted(base, 'set exactly one of clientSecret, privateKeyJwt and tlsClientAuth');
  }
  const target = conn.tokenUrl ?? conn.issuer;
  if (target !== undefined && new URL(target).protocol !== 'https:') {
    if (conn.tls !== undefined) counted([...base, 'tls'], 'applies to an https: tokenUrl or issuer only');
    if (conn.tlsClientAuth !== undefined) counted([...base, 'tlsClientAuth'], 'mutual TLS needs an https: tokenUrl or issuer');
  }
  const tls = verify(conn.tls, [...base, 'tls']);
  const audience = conn.privateKeyJwt?.audience;
  if (audience === 'issuer' && conn.issuer === undefined) {
    counted(
      [...base, 'privateKeyJwt', 'audience'],
      'audience: issuer needs the connection to set issuer (and no tokenUrl); use token-endpoint or a literal audience',
    );
  }
  if (conn.privateKeyJwt?.thumbprint === 'sha1' && conn.privateKeyJwt.certificate === undefined) {
    counted([...base, 'privateKeyJwt', 'thumbprint'], 'thumbprint: sha1 adds the x5t header from the certificate: set certificate too');
  }
  const secretPaths: Array<[string, PropertyKey[]]> = [];
  if (conn.clientSecret !== undefined) secretPaths.push([conn.clientSecret.secret, [...base, 'clientSecret', 'secret']]);
  if (conn.privateKeyJwt !== undefined) {
    secretPaths.push([conn.privateKeyJwt.secret, [...base, 'privateKeyJwt', 'secret']]);
    if (conn.privateKeyJwt.certificate !== undefined)
      secretPaths.push([conn.privateKeyJwt.certificate, [...base, 'privateKeyJwt', 'certificate']]);
  }
  if (conn.tlsClientAuth !== undefined) {
    secretPaths.push([conn.tlsClientAuth.certificate, [...base, 'tlsClientAuth', 'certificate']]);
    secretPaths.push([conn.tlsClientAuth.key, [...base, 'tlsClientAuth', 'key']]);
  }
  const resolved = secretPaths.map(([name, path]) => secretRef(name, path));
  if (problemCount > 0 || resolved.some((s) => s === undefined)) return undefined;

  let auth: ClientAuth;
  const block = conn.clientSecret !== undefined ? 'clientSecret' : conn.tlsClientAuth !== undefined ? 'tlsClientAuth' : 'privateKeyJwt';
  try {
    if (conn.clientSecret !== undefined) {
      const secret = resolved[0] as Secret;
      const method = conn.clientSecret.method;
      if (conn.clientSecret.algorithm !== undefined && method !== 'client_secret_jwt') {
        counted([...base, 'clientSecret', 'algorithm'], 'algorithm applies to method client_secret_jwt only');
        return undefined;
      }
      auth =
        method === 'client_secret_basic'
          ? clientSecretBasic(conn.clientId, secret)
          : method === 'client_secret_post'
            ? clientSecretPost(conn.clientId, secret)
            : clientSecretJwt(conn.clientId, secret, conn.clientSecret.algorithm ?? 'HS256', 'token-endpoint');
    } else if (conn.tlsClientAuth !== undefined) {
      auth = tlsClientAuth({
        clientId: conn.clientId,
        method: conn.tlsClientAuth.method,
        credentials: { certificate: resolved[0] as Secret, key: resolved[1] as Secret },
      });
    } else {
      const pkj = conn.privateKeyJwt!;
      auth = privateKeyJwt({
        clientId: conn.clientId,
        key: resolved[0] as Secret,
        format: pkj.format,
        keyId: pkj.keyId,
        algorithm: pkj.algorithm,
        audience: pkj.audience,
        certificate: resolved[1],
        thumbprint: pkj.thumbprint,
      });
    }
  } catch (error) {
    if (error instanceof CredentialProblem) {
      report([...base, block, error.field], error.message);
      return undefined;
    }
    throw error;
  }

  const params = stringParams(conn.params);
  const hash = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 16);
  return Object.freeze({
    key,
    displayName: conn.displayName ?? key,
    clientId: conn.clientId,
    tokenUrl: conn.tokenUrl,
    issuer: conn.issuer,
    auth,
    tls,
    params: Object.freeze(params),
    timeouts: Object.freeze(conn.timeouts),
    retry: Object.freeze(conn.retry),
    token: Object.freeze(conn.token),
    fingerprint: hash(JSON.stringify([conn, resolved.map((s) => s?.reveal()), tls?.id])),
    identity: hash(JSON.stringify([conn.tokenUrl ?? conn.issuer, conn.clientId])),
  });
}

function stringParams(params: Record<string, string | number | boolean> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params ?? {})) out[k] = String(v);
  return out;
}

function resolveSecrets(raw: RawConfig, file: string, env: NodeJS.ProcessEnv, report: Report): Map<string, Secret> {
  const out = new Map<string, Secret>();
  const dir = dirname(resolve(file));
  for (const [name, def] of Object.entries(raw.secrets)) {
    const keyPath = ['secrets', name];
    if ('env' in def) {
      const value = env[def.env];
      if (value === undefined || value === '') {
        report([...keyPath, 'env'], `environment variable ${def.env} is not set`);
      } else out.set(name, new Secret(name, value));
    } else if ('file' in def) {
      try {
        out.set(name, new Secret(name, readFileSync(resolve(dir, def.file), 'utf8').replace(/\r?\n$/, '')));
      } catch (error) {
        report([...keyPath, 'file'], `cannot read ${def.file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
      }
    } else {
      out.set(name, new Secret(name, def.value));
    }
  }
  return out;
}

const VARIABLE = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * `${VAR}` and `${VAR:-default}` in non-secret string values; `$${VAR}` stays literal. Secret
 * definitions are left alone: they have `env` for that, and a substituted secret could be logged.
 */
function substituteVariables(value: unknown, keyPath: PropertyKey[], env: NodeJS.ProcessEnv, report: Report): unknown {
  if (typeof value === 'string') {
    const single = /^\$\{[^}]*\}$/.test(value);
    const result = value.replace(VARIABLE, (whole, escaped: string | undefined, name: string, fallback: string | undefined) => {
      if (escaped !== undefined) return whole.slice(1);
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      report(keyPath, `environment variable ${name} is not set (write \${${name}:-default} for a default)`);
      return whole;
    });
    // `port: ${PORT:-8080}` means a number: a value that is one variable takes the type it reads as.
    if (single && /^-?\d+(\.\d+)?$/.test(result)) return Number(result);
    if (single && (result === 'true' || result === 'false')) return result === 'true';
    return result;
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteVariables(item, [...keyPath, i], env, report));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = keyPath.length === 0 && k === 'secrets' ? v : substituteVariables(v, [...keyPath, k], env, report);
    }
    return out;
  }
  return value;
}

/**
 * yaml's message for an alias without an anchor quotes the alias, which may be an unquoted secret
 * that happens to start with `*`: say where it is instead.
 */
function unreadableYaml(error: unknown, doc: Document, lineCounter: LineCounter): ConfigProblem {
  let unresolved: Alias | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (node.resolve(doc) !== undefined) return undefined;
      unresolved = node;
      return visit.BREAK;
    },
  });
  if (unresolved?.range == null) return { path: '', message: `cannot read the YAML: ${(error as Error).message}` };
  const { line, col } = lineCounter.linePos(unresolved.range[0]);
  return { path: '', message: 'an alias (*name) has no anchor (&name) before it; quote a value that starts with *', line, column: col };
}

/**
 * The key path of a value that contains itself, or undefined. YAML allows `a: &x [*x]`; toJS turns
 * it into a cyclic object that every later walk would follow until the stack runs out.
 */
function selfReference(value: unknown, keyPath: PropertyKey[] = [], ancestors = new Set<object>()): PropertyKey[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (ancestors.has(value)) return keyPath;
  ancestors.add(value);
  for (const [key, item] of Object.entries(value)) {
    const found = selfReference(item, [...keyPath, Array.isArray(value) ? Number(key) : key], ancestors);
    if (found !== undefined) return found;
  }
  ancestors.delete(value);
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return 'unknown key';
  if (issue.code === 'invalid_union' && issue.path.length === 2 && issue.path[0] === 'secrets') {
    return 'a secret is exactly one of { env: VAR }, { file: PATH } or { value: TEXT }';
  }
  return issue.message;
}

function withPosition(
  problem: Omit<ConfigProblem, 'line' | 'column'>,
  doc: Document,
  lineCounter: LineCounter,
  keyPath: readonly PropertyKey[],
): ConfigProblem {
  for (let length = keyPath.length; length >= 1; length--) {
    const node = doc.getIn(keyPath.slice(0, length) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node?.range !== undefined) {
      const pos = lineCounter.linePos(node.range[0]);
      return { ...problem, line: pos.line, column: pos.col };
    }
  }
  return problem;
}

function isCidr(text: string): boolean {
  const [address, bits, extra] = text.split('/');
  if (address === undefined || extra !== undefined) return false;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  const max = v4 !== null ? 32 : address.includes(':') ? 128 : -1;
  if (max < 0) return false;
  if (v4 !== null && v4.slice(1).some((octet) => Number(octet) > 255)) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value) && !(value instanceof URL)) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
