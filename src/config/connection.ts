/**
 * A connection's checks and settings: one token endpoint or issuer, exactly one way to
 * authenticate, its secrets resolved. The strategy itself is built by the compile stage.
 */
import { createHash } from 'node:crypto';
import { isLoopbackHost } from './checks.js';
import type { Report } from './report.js';
import type { RawConnection, RawTlsVerify } from './schema.js';
import type { Secret } from './secret.js';
import type { TlsVerify } from './tls.js';
import type { ClientCredentials, ConnectionSettings } from './types.js';

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
  if (conn.clientSecret?.algorithm !== undefined && conn.clientSecret.method !== 'client_secret_jwt') {
    counted([...base, 'clientSecret', 'algorithm'], 'algorithm applies to method client_secret_jwt only');
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
    };
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
