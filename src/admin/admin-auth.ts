/**
 * Who is calling the admin listener, and what they may do. Scripts send an admin key
 * (admin.auth.apiKeys) as `Authorization: Bearer <key>` and are editors; people sign in, with a
 * key or with single sign-on (src/admin/sso.ts), and get a session cookie. A session holds who
 * signed in, never a key or a provider's token; its role is worked out again on every request
 * from the config that runs, so a key or a group taken out of the config ends its sessions at once.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../config/load.js';
import type { Secret } from '../config/secret.js';
import type { Logger } from '../observability/log.js';
import { audit, type AdminIdentity, type AdminRole } from './audit.js';
import { AdminError } from '../errors/admin.js';
import { readSessionCookie, sessionCookie } from './session-cookie.js';
import type { SessionStore } from './session-store.js';

export type { AdminIdentity, AdminRole } from './audit.js';

/** What a session holds: who signed in and how. The role is not stored: see roleOf. */
export interface StoredSession {
  method: 'key' | 'oidc';
  /** Key sessions: SHA-256 (hex) of the key; the session ends when no configured key has it. */
  keyHash?: string;
  /** OIDC sessions: the provider and client they came from, and the user's claims. */
  issuer?: string;
  clientId?: string;
  sub?: string;
  email?: string;
  name?: string;
  /** The values of the roles claim at sign-in (bounded: see sso.ts). */
  groups?: string[];
  expiresAt: number;
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
const isString = (value: unknown): value is string => typeof value === 'string';

/** editor beats viewer; neither is no role at all (and no session). */
export function roleFor(
  groups: readonly string[],
  roles: { editors: readonly string[]; viewers: readonly string[] },
): AdminRole | undefined {
  if (groups.some((group) => roles.editors.includes(group))) return 'editor';
  if (groups.some((group) => roles.viewers.includes(group))) return 'viewer';
  return undefined;
}

export class AdminAuth {
  /** Each request's caller, worked out once by `identify` before any route runs. */
  readonly #identities = new WeakMap<Request, AdminIdentity>();

  constructor(
    private readonly config: () => Config,
    private readonly store: SessionStore,
    private readonly log: Logger,
  ) {}

  /** True when admin.auth is set: changing calls then need a key or a session. */
  get configured(): boolean {
    return this.config().admin.auth !== undefined;
  }

  /**
   * The configured key that `candidate` equals, or undefined. Both sides are hashed first so that
   * timingSafeEqual compares equal lengths and leaks neither length nor content; every key is
   * compared, whichever matches.
   */
  #matchKey(candidate: string | Buffer): Secret | undefined {
    const given = typeof candidate === 'string' ? sha256(candidate) : candidate;
    let found: Secret | undefined;
    for (const key of this.config().admin.auth?.apiKeys ?? []) {
      if (timingSafeEqual(given, sha256(key.reveal()))) found = key;
    }
    return found;
  }

  /** Middleware: finds the caller (a key, or a live session) and keeps it for `identity(req)`. */
  readonly identify = (req: Request, _res: Response, next: NextFunction): void => {
    this.#resolve(req).then(
      (who) => {
        if (who !== undefined) this.#identities.set(req, who);
        next();
      },
      // A session store that does not answer: the caller is not signed in (fail closed).
      () => next(),
    );
  };

  async #resolve(req: Request): Promise<AdminIdentity | undefined> {
    if (!this.configured) return undefined;
    const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1];
    if (bearer !== undefined) {
      const key = this.#matchKey(bearer);
      return key === undefined ? undefined : { method: 'key', role: 'editor', key: key.name, name: key.name };
    }
    const id = sessionId(req);
    if (id === undefined) return undefined;
    const session = parseSession(await this.store.get('session', id));
    if (session === undefined || session.expiresAt <= Date.now()) return undefined;
    return this.#identityOf(session);
  }

  /** The session's caller under the config that runs now, or undefined when it no longer qualifies. */
  #identityOf(session: StoredSession): AdminIdentity | undefined {
    if (session.method === 'key') {
      const key = session.keyHash === undefined ? undefined : this.#matchKey(Buffer.from(session.keyHash, 'hex'));
      return key === undefined ? undefined : { method: 'key', role: 'editor', key: key.name, name: key.name };
    }
    const oidc = this.config().admin.auth?.oidc;
    if (oidc === undefined || session.issuer !== oidc.issuer || session.clientId !== oidc.clientId || session.sub === undefined)
      return undefined;
    const role = roleFor(session.groups ?? [], oidc.roles);
    if (role === undefined) return undefined;
    return { method: 'oidc', role, sub: session.sub, email: session.email, name: session.name ?? session.email ?? session.sub };
  }

  /** The caller `identify` found for this request. */
  identity(req: Request): AdminIdentity | undefined {
    return this.#identities.get(req);
  }

  /** Whether this request carries a valid admin key or a live session. */
  authenticated(req: Request): boolean {
    return this.#identities.has(req);
  }

  /** Starts a session for a valid key and sets its cookie; throws ADMIN_AUTH_REQUIRED otherwise. */
  async signIn(req: Request, res: Response, key: unknown): Promise<void> {
    const secret = typeof key === 'string' && key !== '' ? this.#matchKey(key) : undefined;
    if (secret === undefined) {
      audit(this.log, { action: 'sign_in_refused', method: 'key', reason: 'not an admin key' });
      throw new AdminError('ADMIN_AUTH_REQUIRED', 'that is not an admin key');
    }
    const who: AdminIdentity = { method: 'key', role: 'editor', key: secret.name, name: secret.name };
    await this.startSession(req, res, { method: 'key', keyHash: sha256(secret.reveal()).toString('hex') }, who);
  }

  /** Stores a session, sets its cookie and audits the sign-in. */
  async startSession(req: Request, res: Response, session: Omit<StoredSession, 'expiresAt'>, who: AdminIdentity): Promise<void> {
    const ttlMs = this.config().admin.sessions.ttlMs;
    const id = randomBytes(32).toString('base64url');
    await this.store.put('session', id, { ...session, expiresAt: Date.now() + ttlMs } satisfies StoredSession, ttlMs);
    res.append('set-cookie', sessionCookie(req, id, Math.floor(ttlMs / 1000)));
    audit(this.log, { action: 'sign_in', who });
  }

  async signOut(req: Request, res: Response): Promise<void> {
    const id = sessionId(req);
    if (id !== undefined) await this.store.delete('session', id);
    res.append('set-cookie', sessionCookie(req, '', 0));
    const who = this.identity(req);
    if (who !== undefined) audit(this.log, { action: 'sign_out', who });
  }

  /**
   * Guards a call: refuses cross-site requests (a page elsewhere making the browser send the
   * session cookie), then asks for a key or a session when admin.auth is set, and for the editor
   * role unless `role: 'viewer'` says a viewer may do it too (Test). `openWithoutAuth` is for the
   * calls that stay open without admin.auth (the token test).
   */
  require(req: Request, options: { openWithoutAuth: boolean; role?: AdminRole }): void {
    if (crossSite(req)) throw new AdminError('ADMIN_FORBIDDEN', 'cross-site requests may not change anything');
    if (!this.configured) {
      if (options.openWithoutAuth) return;
      throw new AdminError('ADMIN_FORBIDDEN', 'changes need admin.auth in the config (and admin.console.edit: true)');
    }
    const who = this.identity(req);
    if (who === undefined) throw new AdminError('ADMIN_AUTH_REQUIRED', 'sign in, or send Authorization: Bearer <admin key>');
    if ((options.role ?? 'editor') === 'editor' && who.role !== 'editor')
      throw new AdminError('ADMIN_FORBIDDEN', 'you are signed in as a viewer: changes need the editor role');
  }
}

/** A session read back from the store, or undefined when it is not one (the store is trusted, its shape checked all the same). */
function parseSession(value: unknown): StoredSession | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const s = value as Record<string, unknown>;
  if ((s.method !== 'key' && s.method !== 'oidc') || typeof s.expiresAt !== 'number') return undefined;
  const optional = ['keyHash', 'issuer', 'clientId', 'sub', 'email', 'name'] as const;
  if (optional.some((field) => s[field] !== undefined && !isString(s[field]))) return undefined;
  if (s.groups !== undefined && !(Array.isArray(s.groups) && s.groups.every(isString))) return undefined;
  return s as unknown as StoredSession;
}

/**
 * Fetch Metadata (Sec-Fetch-Site) where the browser sends it, else Origin against Host: a browser
 * always sends one of them on a cross-site POST/PUT/DELETE. Scripts send neither and pass.
 */
export function crossSite(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.get('origin');
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.get('host');
  } catch {
    return true;
  }
}

function sessionId(req: Request): string | undefined {
  const id = readSessionCookie(req);
  return id === undefined || id === '' ? undefined : id;
}
