/**
 * Stage 5: what a schema cannot say. References between sections (secrets, connections), values
 * checked with the code the runtime uses (src/config/checks.ts), TLS material read as PEM; the
 * result is a CheckedConfig with every secret resolved and every route normalised.
 */
import { dirname, resolve } from 'node:path';
import { normalizePath } from '../routing/path.js';
import { adminSettings } from './admin.js';
import { allowList, headerNameProblem, normaliseHost, ValueProblem } from './checks.js';
import { formatPath } from './errors.js';
import { connectionSettings, stringParams, type SecretRef, type TlsVerifyRef } from './connection.js';
import { redisSettings } from './redis-topology.js';
import type { Problems, Report } from './report.js';
import { checkSecretRoles } from './secret-roles.js';
import type { RawAccess, RawConfig } from './schema.js';
import type { Secret } from './secret.js';
import { caBundleProblem, keyPairProblem, tlsVerify, type TlsKeyPair } from './tls.js';
import type { AccessPolicy, CheckedConfig, ConnectionSettings, Route } from './types.js';
import type { ValidatedConfig } from './validate.js';

export function checkSemantics(validated: ValidatedConfig, secrets: ReadonlyMap<string, Secret>, problems: Problems): CheckedConfig {
  const { raw, routeList, declaredSecrets, declaredConnections } = validated;
  const report: Report = problems.report;
  const warnings: string[] = [];
  for (const [name, def] of Object.entries(raw.secrets)) {
    if ('value' in def) warnings.push(`secrets.${name} is an inline value; use env or file outside development`);
  }

  const secretRef: SecretRef = (name, keyPath) => {
    if (!declaredSecrets.has(name)) {
      // Not quoted: what stands where a secret name belongs may be a secret pasted by mistake.
      report(keyPath, `unknown secret: no entry of this name under secrets (known: ${[...declaredSecrets].join(', ') || 'none'})`);
      return undefined;
    }
    return secrets.get(name);
  };

  const access = (policy: RawAccess | undefined, keyPath: PropertyKey[]): AccessPolicy | undefined => {
    if (policy === undefined) return undefined;
    const apiKeys = (policy.apiKeys ?? []).map((k, i) => secretRef(k.secret, [...keyPath, 'apiKeys', i, 'secret']));
    const allowFrom = policy.allowFrom ?? [];
    try {
      allowList(allowFrom);
    } catch (error) {
      // allowList throws nothing but ValueProblem; the rethrow is for a bug, which no test can provoke.
      // Stryker disable next-line ConditionalExpression: equivalent (above)
      if (!(error instanceof ValueProblem)) throw error;
      report([...keyPath, 'allowFrom', error.index ?? 0], error.message);
    }
    const headerProblem = headerNameProblem(policy.header);
    if (headerProblem !== undefined) report([...keyPath, 'header'], headerProblem);
    if (apiKeys.length === 0 && allowFrom.length === 0) report(keyPath, 'an access policy needs apiKeys, allowFrom, or both');
    return Object.freeze({
      header: policy.header.toLowerCase(),
      // An unknown key secret was reported above, so the config is refused before this list is used.
      // Stryker disable next-line MethodExpression,ConditionalExpression: equivalent (above)
      apiKeys: Object.freeze(apiKeys.filter((s): s is Secret => s !== undefined)),
      allowFrom: Object.freeze([...allowFrom]),
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

  const connections = new Map<string, ConnectionSettings>();
  for (const [key, conn] of Object.entries(raw.connections)) {
    const built = connectionSettings(key, conn, secretRef, verify, report, problems.file);
    // connectionSettings is undefined only after reporting a problem, so throwIfAny refuses the config anyway.
    // Stryker disable next-line ConditionalExpression: equivalent (above)
    if (built !== undefined) connections.set(key, built);
    // Replicas share tokens through Redis, and a token only works with the key it is bound to (RFC 9449 §6).
    if (conn.dpop !== undefined && conn.dpop.key === undefined && raw.cache.store === 'redis') {
      report(
        ['connections', key, 'dpop', 'key'],
        'required with cache.store: redis (replicas sharing tokens must share the key they are bound to)',
      );
    }
    if (conn.privateKeyJwt?.managed !== undefined) managedKeyChecks(key, raw.cache, report, warnings);
  }

  const routes: Route[] = [];
  const seenNames = new Map<string, number>();
  routeList.forEach((route, index) => {
    if (route === undefined) return;
    const keyPath = ['routes', index];
    const earlier = seenNames.get(route.name);
    if (earlier !== undefined) report([...keyPath, 'name'], `duplicate route name "${route.name}" (also routes[${earlier}])`);
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
        problems.reportAt([...keyPath, 'auth', 'connection'], [...keyPath, 'auth'], 'required when auth.type is client-connection');
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
    let host = route.match.host;
    if (host !== undefined) {
      const normalised = normaliseHost(host);
      if (normalised instanceof ValueProblem) report([...keyPath, 'match', 'host'], normalised.message);
      else host = normalised;
    }
    routes.push(
      deepFreeze({
        ...route,
        match: { ...route.match, pathPrefix, host, methods: route.match.methods?.map((m) => m.toUpperCase()) },
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
  raw.admin.allowedHosts.forEach((host, i) => {
    const normalised = normaliseHost(host);
    if (normalised instanceof ValueProblem) report(['admin', 'allowedHosts', i], normalised.message);
  });
  checkSecretRoles(raw, secrets, report);
  const admin = adminSettings(raw, secretRef, report);

  let encryptionKey: Secret | undefined;
  if (raw.cache.encryptionKey !== undefined) {
    encryptionKey = secretRef(raw.cache.encryptionKey.secret, ['cache', 'encryptionKey', 'secret']);
  }
  const redis = redisSettings(raw.cache.redis, secretRef, verify, report);
  if (raw.cache.store === 'redis' && raw.cache.encryptionKey === undefined && !raw.cache.allowPlaintext) {
    problems.reportAt(
      ['cache', 'encryptionKey'],
      ['cache'],
      'store: redis keeps tokens at rest: set encryptionKey, or allowPlaintext: true to accept plaintext tokens in Redis',
    );
  }

  const listen = raw.listen;
  // Node refuses to start a server whose headers time-out exceeds its request time-out.
  if (listen.headersTimeoutMs > listen.requestTimeoutMs)
    report(['listen', 'headersTimeoutMs'], `must not exceed requestTimeoutMs (${listen.requestTimeoutMs})`);
  const listenTls = keyPair(listen.tls, ['listen', 'tls']);

  problems.throwIfAny();
  return Object.freeze({
    file: problems.file,
    listen: Object.freeze({ ...listen, tls: listenTls }),
    admin,
    logging: Object.freeze(raw.logging),
    cache: Object.freeze({ ...raw.cache, redis, encryptionKey }),
    access: topAccess,
    connections,
    routes: Object.freeze(routes),
    // Stryker disable next-line ConditionalExpression: equivalent, Object.freeze(undefined) is undefined
    tracing: raw.tracing === undefined ? undefined : Object.freeze(raw.tracing),
    warnings: Object.freeze(warnings),
    secretFiles: secretFiles(raw.secrets, problems.file),
  });
}

/** Every `{ file: }` secret's absolute path (relative paths resolve from the config file's folder). */
function secretFiles(secrets: RawConfig['secrets'], file: string): ReadonlyMap<string, string> {
  const dir = dirname(resolve(file));
  const out = new Map<string, string>();
  for (const [name, def] of Object.entries(secrets)) if ('file' in def) out.set(name, resolve(dir, def.file));
  return out;
}

/**
 * Managed signing keys are shared by a fleet through Redis, encrypted: private keys never rest in
 * Redis in plaintext. With the memory store each process has its own keys, right for one process.
 */
function managedKeyChecks(key: string, cache: ValidatedConfig['raw']['cache'], report: Report, warnings: string[]): void {
  if (cache.store === 'redis' && cache.encryptionKey === undefined) {
    report(
      ['connections', key, 'privateKeyJwt', 'managed'],
      'with cache.store: redis the managed keys are shared through Redis, encrypted: ' +
        'set cache.encryptionKey (allowPlaintext does not cover private keys)',
    );
  }
  if (cache.store === 'memory') {
    warnings.push(
      `connections.${key}.privateKeyJwt.managed: with cache.store: memory each process makes its own keys; ` +
        'replicas behind one JWKS URL need cache.store: redis to sign with keys the JWKS publishes',
    );
  }
}

function deepFreeze<T>(value: T): T {
  // Object.isFrozen is true for primitives and null, and re-freezing a frozen object's children only freezes
  // more (Secrets keep their value in a private field), so weakening the type checks changes nothing.
  // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent (above)
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value) && !(value instanceof URL)) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
