/**
 * The admin plane's settings (`admin.auth`, `admin.sessions`): keys and single sign-on resolved,
 * the checks a schema cannot say made at their key paths.
 */
import { createHash } from 'node:crypto';
import { isLoopbackHost } from './checks.js';
import { parseDuration } from './duration.js';
import type { SecretRef } from './connection.js';
import type { Report } from './report.js';
import type { RawAdminOidc, RawConfig } from './schema.js';
import type { Secret } from './secret.js';
import type { AdminOidc, CheckedConfig } from './types.js';

/** Shorter than a minute is a session nobody can work in; a typo like `8s` for `8h` is caught. */
const MIN_SESSION_TTL_MS = 60_000;
/** Longer than a week is not a session any more; the cookie's Max-Age and Redis's PX hold it easily. */
const MAX_SESSION_TTL_MS = 7 * 24 * 3_600_000;

export function adminSettings(raw: RawConfig, secretRef: SecretRef, report: Report): CheckedConfig['admin'] {
  const { auth, sessions, ...rest } = raw.admin;
  const ttlMs = parseDuration(sessions.ttl) ?? 0;
  if (ttlMs < MIN_SESSION_TTL_MS || ttlMs > MAX_SESSION_TTL_MS)
    report(['admin', 'sessions', 'ttl'], 'must be between 1m and 168h (a week)');
  if (sessions.store === 'redis' && raw.cache.encryptionKey === undefined)
    report(['admin', 'sessions', 'store'], 'redis keeps sessions at rest: set cache.encryptionKey (they are stored encrypted with it)');
  let resolvedAuth: CheckedConfig['admin']['auth'];
  if (auth !== undefined) {
    if (auth.apiKeys === undefined && auth.oidc === undefined) report(['admin', 'auth'], 'set apiKeys, oidc, or both');
    const apiKeys = (auth.apiKeys ?? [])
      .map((k, i) => secretRef(k.secret, ['admin', 'auth', 'apiKeys', i, 'secret']))
      .filter((k): k is Secret => k !== undefined);
    const oidc = auth.oidc === undefined ? undefined : oidcSettings(auth.oidc, secretRef, report);
    resolvedAuth = Object.freeze({ apiKeys: Object.freeze(apiKeys), oidc });
  }
  return Object.freeze({ ...rest, auth: resolvedAuth, sessions: Object.freeze({ store: sessions.store, ttlMs }) });
}

function oidcSettings(oidc: RawAdminOidc, secretRef: SecretRef, report: Report): AdminOidc | undefined {
  const base = ['admin', 'auth', 'oidc'];
  let problems = 0;
  const counted: Report = (path, message) => {
    problems++;
    report(path, message);
  };
  for (const field of ['issuer', 'redirectUrl'] as const) {
    const value = oidc[field];
    if (value === undefined) continue;
    const url = new URL(value);
    // The authorization code and the client's credentials travel on these.
    if (url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) counted([...base, field], 'must be https: unless the host is loopback');
    if (url.username !== '' || url.password !== '') counted([...base, field], 'must not carry user info (user:password@)');
  }
  if (!oidc.scopes.includes('openid')) counted([...base, 'scopes'], 'must include openid (the ID token carries who signed in)');
  if (oidc.roles.editors.length === 0 && oidc.roles.viewers.length === 0)
    counted([...base, 'roles'], 'name at least one value in editors or viewers: a user with neither role gets no session');
  if ((oidc.clientSecret === undefined) === (oidc.privateKeyJwt === undefined))
    counted(base, 'set exactly one of clientSecret and privateKeyJwt');
  if (oidc.clientSecret?.algorithm !== undefined && oidc.clientSecret.method !== 'client_secret_jwt')
    counted([...base, 'clientSecret', 'algorithm'], 'algorithm applies to method client_secret_jwt only');
  if (oidc.privateKeyJwt?.thumbprint === 'sha1' && oidc.privateKeyJwt.certificate === undefined)
    counted([...base, 'privateKeyJwt', 'thumbprint'], 'thumbprint: sha1 adds the x5t header from the certificate: set certificate too');

  // Managed keys are published per connection (/jwks/KEY.json); the console's client brings its own key.
  if (oidc.privateKeyJwt?.managed !== undefined)
    counted([...base, 'privateKeyJwt', 'managed'], 'managed keys are for connections: give the console client a key (secret)');
  else if (oidc.privateKeyJwt !== undefined && oidc.privateKeyJwt.secret === undefined)
    counted([...base, 'privateKeyJwt', 'secret'], 'is required: the secret holding the private key');

  let credentials: AdminOidc['credentials'] | undefined;
  if (oidc.clientSecret !== undefined) {
    const { method, algorithm } = oidc.clientSecret;
    const secret = secretRef(oidc.clientSecret.secret, [...base, 'clientSecret', 'secret']);
    const previous =
      oidc.clientSecret.previous === undefined ? undefined : secretRef(oidc.clientSecret.previous, [...base, 'clientSecret', 'previous']);
    if (secret !== undefined && (oidc.clientSecret.previous === undefined || previous !== undefined))
      credentials = { kind: 'clientSecret', method, secret, algorithm: algorithm ?? 'HS256', previous };
  } else if (oidc.privateKeyJwt?.secret !== undefined) {
    const pkj = oidc.privateKeyJwt;
    const key = secretRef(oidc.privateKeyJwt.secret, [...base, 'privateKeyJwt', 'secret']);
    const certificate = pkj.certificate === undefined ? undefined : secretRef(pkj.certificate, [...base, 'privateKeyJwt', 'certificate']);
    if (key !== undefined && (pkj.certificate === undefined || certificate !== undefined))
      credentials = { kind: 'privateKeyJwt', key, certificate, settings: pkj };
  }
  if (problems > 0 || credentials === undefined) return undefined;
  const revealed =
    credentials.kind === 'clientSecret'
      ? [credentials.secret.reveal(), credentials.previous?.reveal()]
      : [credentials.key.reveal(), credentials.certificate?.reveal()];
  return Object.freeze({
    issuer: oidc.issuer,
    clientId: oidc.clientId,
    credentials: Object.freeze(credentials),
    redirectUrl: oidc.redirectUrl,
    scopes: Object.freeze([...oidc.scopes]),
    roles: Object.freeze({
      claim: oidc.roles.claim,
      editors: Object.freeze([...oidc.roles.editors]),
      viewers: Object.freeze([...oidc.roles.viewers]),
    }),
    fingerprint: createHash('sha256')
      .update(JSON.stringify([oidc.issuer, oidc.clientId, oidc.clientSecret, oidc.privateKeyJwt, revealed]))
      .digest('hex')
      .slice(0, 16),
  });
}
