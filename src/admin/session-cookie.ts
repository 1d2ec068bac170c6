/**
 * The console's cookies. HttpOnly (no script reads them), Path=/. The session cookie is
 * SameSite=Strict (no other site's page makes the browser send it); the sign-in in progress of
 * single sign-on is SameSite=Lax, because the provider sends the browser back with a cross-site
 * top-level navigation, which a Strict cookie would not survive. Over HTTPS their names carry the
 * `__Host-` prefix: the browser refuses such a cookie unless it is Secure, host-only and Path=/, so
 * neither a plain HTTP page nor a sibling domain can plant or overwrite it (RFC 6265bis §4.1.3.2).
 * Over HTTPS only the prefixed names are read.
 */
import type { Request } from 'express';
import { HOST_LOGIN_COOKIE, HOST_SESSION_COOKIE, LOGIN_COOKIE, SESSION_COOKIE } from '../config/admin-cookies.js';

const overHttps = (req: Request): boolean => (req.socket as { encrypted?: boolean }).encrypted === true;

interface AdminCookie {
  readonly http: string;
  readonly https: string;
  readonly sameSite: 'Strict' | 'Lax';
}

const SESSION: AdminCookie = { http: SESSION_COOKIE, https: HOST_SESSION_COOKIE, sameSite: 'Strict' };
const LOGIN: AdminCookie = { http: LOGIN_COOKIE, https: HOST_LOGIN_COOKIE, sameSite: 'Lax' };

const nameOf = (req: Request, cookie: AdminCookie): string => (overHttps(req) ? cookie.https : cookie.http);

function read(req: Request, cookie: AdminCookie): string | undefined {
  const name = nameOf(req, cookie);
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

function set(req: Request, cookie: AdminCookie, value: string, maxAgeSeconds: number): string {
  const secure = overHttps(req) ? '; Secure' : '';
  return `${nameOf(req, cookie)}=${value}; Path=/; HttpOnly; SameSite=${cookie.sameSite}; Max-Age=${maxAgeSeconds}${secure}`;
}

export const sessionCookieName = (req: Request): string => nameOf(req, SESSION);

/** The session id the request's cookie carries, or undefined. */
export const readSessionCookie = (req: Request): string | undefined => read(req, SESSION);

/** The Set-Cookie value that sets (or, with an empty value and 0, clears) the session cookie. */
export const sessionCookie = (req: Request, value: string, maxAgeSeconds: number): string => set(req, SESSION, value, maxAgeSeconds);

/** The id of the single sign-on in progress the request's cookie carries, or undefined. */
export const readLoginCookie = (req: Request): string | undefined => read(req, LOGIN);

/** The Set-Cookie value that sets (or clears) the cookie of a single sign-on in progress. */
export const loginCookie = (req: Request, value: string, maxAgeSeconds: number): string => set(req, LOGIN, value, maxAgeSeconds);
