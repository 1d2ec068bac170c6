/**
 * Who may change things through the admin listener: an admin key (admin.auth.apiKeys) sent as
 * `Authorization: Bearer <key>`, or a console session started by signing in with one. Sessions
 * live in this process only, expire, and end when the key they were started with leaves the config.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Config } from '../config/load.js';
import { AdminError } from './problem.js';
import { readSessionCookie as sessionId, sessionCookie as cookie } from './session-cookie.js';

/** A signed-in console stays usable for a working day, not for good. */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;
/** Enough for every operator; a flood of sign-ins cannot grow memory past it. */
const MAX_SESSIONS = 1_000;

interface Session {
  expiresAt: number;
  /** SHA-256 of the admin key the session was started with. */
  keyHash: Buffer;
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export class AdminAuth {
  readonly #sessions = new Map<string, Session>();

  constructor(private readonly config: () => Config) {}

  /** True when admin.auth is set: changing calls then need a key or a session. */
  get configured(): boolean {
    return this.config().admin.auth !== undefined;
  }

  /**
   * The hash of the configured key that `candidate` equals, or undefined. Both sides are hashed
   * first so that timingSafeEqual compares equal lengths and leaks neither length nor content.
   */
  #matchKey(candidate: string): Buffer | undefined {
    const given = sha256(candidate);
    let found: Buffer | undefined;
    for (const key of this.config().admin.auth?.apiKeys ?? []) {
      const expected = sha256(key.reveal());
      if (timingSafeEqual(given, expected)) found = expected;
    }
    return found;
  }

  #keyStillConfigured(keyHash: Buffer): boolean {
    return (this.config().admin.auth?.apiKeys ?? []).some((key) => timingSafeEqual(sha256(key.reveal()), keyHash));
  }

  /** Starts a session for a valid key and sets its cookie; throws ADMIN_AUTH_REQUIRED otherwise. */
  signIn(req: Request, res: Response, key: unknown): void {
    const keyHash = typeof key === 'string' && key !== '' ? this.#matchKey(key) : undefined;
    if (keyHash === undefined) throw new AdminError('ADMIN_AUTH_REQUIRED', 'that is not an admin key');
    this.#prune();
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, { expiresAt: Date.now() + SESSION_TTL_MS, keyHash });
    res.setHeader('set-cookie', cookie(req, id, Math.floor(SESSION_TTL_MS / 1000)));
  }

  signOut(req: Request, res: Response): void {
    const id = sessionId(req);
    if (id !== undefined) this.#sessions.delete(id);
    res.setHeader('set-cookie', cookie(req, '', 0));
  }

  /** Whether this request carries a valid admin key or a live session. */
  authenticated(req: Request): boolean {
    if (!this.configured) return false;
    const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1];
    if (bearer !== undefined) return this.#matchKey(bearer) !== undefined;
    const id = sessionId(req);
    const session = id === undefined ? undefined : this.#sessions.get(id);
    if (id === undefined || session === undefined) return false;
    if (session.expiresAt <= Date.now() || !this.#keyStillConfigured(session.keyHash)) {
      this.#sessions.delete(id);
      return false;
    }
    return true;
  }

  /**
   * Guards a changing call: refuses cross-site requests (a page elsewhere making the browser send
   * the session cookie), then asks for a key or a session when admin.auth is set. `open` is for
   * the calls that stay open without admin.auth (the token test).
   */
  require(req: Request, options: { openWithoutAuth: boolean }): void {
    if (crossSite(req)) throw new AdminError('ADMIN_FORBIDDEN', 'cross-site requests may not change anything');
    if (!this.configured) {
      if (options.openWithoutAuth) return;
      throw new AdminError('ADMIN_FORBIDDEN', 'changes need admin.auth in the config (and admin.console.edit: true)');
    }
    if (!this.authenticated(req)) throw new AdminError('ADMIN_AUTH_REQUIRED', 'sign in, or send Authorization: Bearer <admin key>');
  }

  #prune(): void {
    const now = Date.now();
    for (const [id, session] of this.#sessions) if (session.expiresAt <= now) this.#sessions.delete(id);
    // Map order is insertion order: the oldest sessions go first.
    for (const id of this.#sessions.keys()) {
      if (this.#sessions.size < MAX_SESSIONS) break;
      this.#sessions.delete(id);
    }
  }
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
