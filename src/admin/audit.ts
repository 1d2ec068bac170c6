/**
 * The admin plane's audit trail: one `event: "admin_audit"` log line for every sign-in, refused
 * sign-in, sign-out and accepted change, saying who (the key's name, or the OIDC `sub` and
 * `email`), with which role, did what to which target. Never a key, a secret, a token or a
 * session id: only names and the claims that identify a person.
 */
import type { Logger } from '../observability/log.js';

export type AdminRole = 'editor' | 'viewer';

/** Who is calling the admin listener. */
export interface AdminIdentity {
  method: 'key' | 'oidc';
  role: AdminRole;
  /** Key callers: the name of the secret under `secrets` that holds the key. */
  key?: string | undefined;
  /** Single sign-on callers: the ID token's `sub` and `email`. */
  sub?: string | undefined;
  email?: string | undefined;
  /** What the console shows: the user's name (or email, or sub), or the key's name. */
  name: string;
}

export type AuditAction =
  'sign_in' | 'sign_in_refused' | 'sign_out' | 'connection_create' | 'connection_replace' | 'connection_delete' | 'route_auth_replace';

export interface AuditEntry {
  action: AuditAction;
  /** Who did it; for a refused sign-in, what is known of who tried (nothing, for a wrong key). */
  who?: Partial<AdminIdentity> | undefined;
  /** Refused sign-ins: `key` or `oidc`, when there is no `who` to say it. */
  method?: 'key' | 'oidc';
  /** What a change was made to: `connections.KEY` or `routes.NAME.auth`. */
  target?: string;
  /** Why a sign-in was refused (no secret, token or id in it). */
  reason?: string;
}

export function audit(log: Logger, entry: AuditEntry): void {
  const { who, action, target, reason } = entry;
  const line = {
    event: 'admin_audit',
    action,
    method: who?.method ?? entry.method,
    ...(who?.key === undefined ? {} : { key: who.key }),
    ...(who?.sub === undefined ? {} : { sub: who.sub }),
    ...(who?.email === undefined ? {} : { email: who.email }),
    ...(who?.role === undefined ? {} : { role: who.role }),
    ...(target === undefined ? {} : { target }),
    ...(reason === undefined ? {} : { reason }),
  };
  const actor = who?.key ?? who?.email ?? who?.sub ?? 'unknown';
  if (action === 'sign_in_refused') log.warn(line, `admin sign-in refused (${reason ?? 'no reason'})`);
  else log.info(line, `admin ${action} by ${actor}${target === undefined ? '' : ` on ${target}`}`);
}
