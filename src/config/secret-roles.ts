/**
 * A secret that lets someone in (an admin key, an access key) must never be what a connection
 * sends out. A connection's credentials travel to its token endpoint, and whoever may edit
 * connections chooses that endpoint: `clientSecret: { secret: admin-key }` with a token URL the
 * editor owns, then Test, would turn a session that expires into the permanent admin key.
 * Compared by name and by value (two names can read the same variable or file).
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Report } from './report.js';
import type { RawConfig, RawConnection } from './schema.js';
import type { Secret } from './secret.js';

/** The secrets that grant access, each with the key path that gives it that role. */
function gatekeeperSecrets(raw: RawConfig): Array<{ name: string; role: string }> {
  const found: Array<{ name: string; role: string }> = [];
  (raw.admin.auth?.apiKeys ?? []).forEach((key, i) => found.push({ name: key.secret, role: `admin.auth.apiKeys[${i}]` }));
  // The single sign-on client's credentials: sent to a token URL an editor owns, they would let
  // that editor act as the console at the company's provider.
  const oidc = raw.admin.auth?.oidc;
  if (oidc?.clientSecret !== undefined) found.push({ name: oidc.clientSecret.secret, role: 'admin.auth.oidc.clientSecret' });
  if (oidc?.clientSecret?.previous !== undefined) found.push({ name: oidc.clientSecret.previous, role: 'admin.auth.oidc.clientSecret' });
  if (oidc?.privateKeyJwt?.secret !== undefined) found.push({ name: oidc.privateKeyJwt.secret, role: 'admin.auth.oidc.privateKeyJwt' });
  (raw.access?.apiKeys ?? []).forEach((key, i) => found.push({ name: key.secret, role: `access.apiKeys[${i}]` }));
  raw.routes.forEach((route, r) =>
    (route.access?.apiKeys ?? []).forEach((key, i) => found.push({ name: key.secret, role: `routes[${r}].access.apiKeys[${i}]` })),
  );
  return found;
}

/** Every secret a connection references, with its key path inside the connection. */
function connectionSecrets(conn: RawConnection): Array<{ name: string; path: string[] }> {
  const refs: Array<[string | undefined, string[]]> = [
    [conn.clientSecret?.secret, ['clientSecret', 'secret']],
    [conn.privateKeyJwt?.secret, ['privateKeyJwt', 'secret']],
    [conn.privateKeyJwt?.certificate, ['privateKeyJwt', 'certificate']],
    [conn.tlsClientAuth?.certificate, ['tlsClientAuth', 'certificate']],
    [conn.tlsClientAuth?.key, ['tlsClientAuth', 'key']],
    [conn.tls?.ca, ['tls', 'ca']],
    [conn.dpop?.key, ['dpop', 'key']],
  ];
  return refs.flatMap(([name, path]) => (name === undefined ? [] : [{ name, path }]));
}

const digest = (secret: Secret): Buffer => createHash('sha256').update(secret.reveal(), 'utf8').digest();

/** Reports each connection secret that is, by name or by value, an admin or access key. */
export function checkSecretRoles(raw: RawConfig, secrets: ReadonlyMap<string, Secret>, report: Report): void {
  const gatekeepers = gatekeeperSecrets(raw).map((entry) => {
    const secret = secrets.get(entry.name);
    return { ...entry, digest: secret === undefined ? undefined : digest(secret) };
  });
  if (gatekeepers.length === 0) return;
  for (const [key, conn] of Object.entries(raw.connections)) {
    for (const { name, path } of connectionSecrets(conn)) {
      const secret = secrets.get(name);
      const value = secret === undefined ? undefined : digest(secret);
      const same = gatekeepers.find(
        (gate) => gate.name === name || (value !== undefined && gate.digest !== undefined && timingSafeEqual(value, gate.digest)),
      );
      if (same !== undefined)
        report(
          ['connections', key, ...path],
          `this secret is also ${same.role}: a key that grants access cannot be a credential a connection sends out`,
        );
    }
  }
}
