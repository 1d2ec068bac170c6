/**
 * A connection's checks and settings: one token endpoint or issuer, exactly one way to
 * authenticate, its secrets resolved. The strategy itself is built by the compile stage.
 */
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { isLoopbackHost } from './checks.js';
import { parseDuration } from './duration.js';
import type { Report } from './report.js';
import type { RawConnection, RawTlsVerify } from './schema.js';
import type { Secret } from './secret.js';
import type { TlsVerify } from './tls.js';
import type { ClientCredentials, ConnectionSettings, ManagedKeySettings } from './types.js';

/** The shortest `privateKeyJwt.managed.rotateEvery` (tests rotate this fast; production uses days). */
export const MIN_ROTATE_EVERY_MS = 10_000;
/** The shortest `overlap`: an authorization server needs some time to fetch the JWKS. */
export const MIN_OVERLAP_MS = 1_000;

export type SecretRef = (name: string, keyPath: PropertyKey[]) => Secret | undefined;
export type TlsVerifyRef = (settings: RawTlsVerify | undefined, keyPath: PropertyKey[]) => TlsVerify | undefined;

export function stringParams(params: Record<string, string | number | boolean> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params ?? {})) out[k] = String(v);
  return out;
}

export function connectionSettings(
  key: string,
  conn: RawConnection,
  secretRef: SecretRef,
  verify: TlsVerifyRef,
  report: Report,
  configFile = '.',
): ConnectionSettings | undefined {
  const base: PropertyKey[] = ['connections', key];
  let problemCount = 0;
  const counted: Report = (p, m) => {
    problemCount++;
    report(p, m);
  };
  if ((conn.tokenUrl === undefined) === (conn.issuer === undefined)) counted(base, 'set exactly one of tokenUrl and issuer');
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
  const others = (['clientSecret', 'privateKeyJwt', 'tlsClientAuth'] as const).filter((method) => conn[method] !== undefined);
  if (conn.clientAssertion !== undefined && others.length > 0) {
    counted([...base, 'clientAssertion'], `cannot be combined with ${others.join(' and ')}: a connection authenticates in exactly one way`);
  } else if (conn.clientAssertion === undefined && others.length !== 1) {
    counted(base, 'set exactly one of clientSecret, privateKeyJwt, tlsClientAuth and clientAssertion');
  }
  const managed = managedSettings(conn, base, counted);
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
  if (conn.clientSecret?.algorithm !== undefined && conn.clientSecret.method !== 'client_secret_jwt') {
    counted([...base, 'clientSecret', 'algorithm'], 'algorithm applies to method client_secret_jwt only');
  }
  const secretPaths: Array<[string, PropertyKey[]]> = [];
  if (conn.clientSecret !== undefined) secretPaths.push([conn.clientSecret.secret, [...base, 'clientSecret', 'secret']]);
  if (conn.clientSecret?.previous !== undefined) secretPaths.push([conn.clientSecret.previous, [...base, 'clientSecret', 'previous']]);
  if (conn.privateKeyJwt?.secret !== undefined) {
    secretPaths.push([conn.privateKeyJwt.secret, [...base, 'privateKeyJwt', 'secret']]);
    if (conn.privateKeyJwt.certificate !== undefined)
      secretPaths.push([conn.privateKeyJwt.certificate, [...base, 'privateKeyJwt', 'certificate']]);
  }
  if (conn.tlsClientAuth !== undefined) {
    secretPaths.push([conn.tlsClientAuth.certificate, [...base, 'tlsClientAuth', 'certificate']]);
    secretPaths.push([conn.tlsClientAuth.key, [...base, 'tlsClientAuth', 'key']]);
  }
  const resolved = secretPaths.map(([name, path]) => secretRef(name, path));
  const dpopKey = conn.dpop?.key === undefined ? undefined : secretRef(conn.dpop.key, [...base, 'dpop', 'key']);
  if (problemCount > 0 || resolved.some((s) => s === undefined)) return undefined;
  if (conn.dpop?.key !== undefined && dpopKey === undefined) return undefined;

  let credentials: ClientCredentials;
  if (conn.clientSecret !== undefined) {
    credentials = {
      kind: 'clientSecret',
      method: conn.clientSecret.method,
      secret: resolved[0] as Secret,
      algorithm: conn.clientSecret.algorithm ?? 'HS256',
      previous: resolved[1],
    };
  } else if (conn.clientAssertion !== undefined) {
    const { file, type } = conn.clientAssertion;
    credentials = { kind: 'clientAssertion', file: resolve(dirname(resolve(configFile)), file), configured: file, type };
  } else if (managed !== undefined) {
    credentials = { kind: 'managedKeyJwt', managed: Object.freeze(managed), audience: conn.privateKeyJwt!.audience };
  } else if (conn.tlsClientAuth !== undefined) {
    credentials = {
      kind: 'tlsClientAuth',
      method: conn.tlsClientAuth.method,
      credentials: Object.freeze({ certificate: resolved[0] as Secret, key: resolved[1] as Secret }),
    };
  } else {
    credentials = { kind: 'privateKeyJwt', key: resolved[0] as Secret, certificate: resolved[1], settings: conn.privateKeyJwt! };
  }

  const hash = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 16);
  return Object.freeze({
    key,
    displayName: conn.displayName ?? key,
    clientId: conn.clientId,
    tokenUrl: conn.tokenUrl,
    issuer: conn.issuer,
    credentials: Object.freeze(credentials),
    tls,
    params: Object.freeze(stringParams(conn.params)),
    timeouts: Object.freeze(conn.timeouts),
    retry: Object.freeze(conn.retry),
    token: Object.freeze(conn.token),
    dpop: conn.dpop === undefined ? undefined : Object.freeze({ key: dpopKey, algorithm: conn.dpop.algorithm }),
    fingerprint: hash(JSON.stringify([conn, resolved.map((s) => s?.reveal()), tls?.id, dpopKey?.reveal()])),
    tokensFingerprint: hash(
      JSON.stringify([conn, credentials.kind === 'tlsClientAuth' ? resolved.map((s) => s?.reveal()) : [], tls?.id, dpopKey?.reveal()]),
    ),
    identity: hash(JSON.stringify([conn.tokenUrl ?? conn.issuer, conn.clientId])),
  });
}

/**
 * `privateKeyJwt.managed` checked and in milliseconds; undefined without it (or after reporting a
 * problem). A managed connection names its keys itself, so the fields of a configured key are refused.
 */
function managedSettings(conn: RawConnection, base: PropertyKey[], report: Report): ManagedKeySettings | undefined {
  const pkj = conn.privateKeyJwt;
  if (pkj === undefined) return undefined;
  const path = [...base, 'privateKeyJwt'];
  if ((pkj.secret === undefined) === (pkj.managed === undefined)) {
    report(path, 'set exactly one of secret (a key you made) and managed (keys tokengate makes and rotates)');
    return undefined;
  }
  if (pkj.managed === undefined) return undefined;
  let problems = 0;
  for (const field of ['format', 'keyId', 'certificate'] as const) {
    if (pkj[field] === undefined) continue;
    problems++;
    report([...path, field], 'not used with managed: tokengate names its keys by their RFC 7638 thumbprint and publishes them as a JWKS');
  }
  const rotateEveryMs = parseDuration(pkj.managed.rotateEvery)!;
  const overlapMs = parseDuration(pkj.managed.overlap)!;
  if (rotateEveryMs < MIN_ROTATE_EVERY_MS) {
    problems++;
    report([...path, 'managed', 'rotateEvery'], 'must be at least 10s');
  }
  if (overlapMs < MIN_OVERLAP_MS) {
    problems++;
    report([...path, 'managed', 'overlap'], 'must be at least 1s (the authorization server needs time to fetch the new key)');
  }
  return problems > 0 ? undefined : { algorithm: pkj.managed.algorithm, rotateEveryMs, overlapMs };
}
