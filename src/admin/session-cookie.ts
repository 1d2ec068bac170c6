/**
 * The console's session cookie. HttpOnly (no script reads it), SameSite=Strict (no other site's
 * page makes the browser send it), Path=/. Over HTTPS it is `__Host-tokengate_session`: the
 * prefix makes the browser refuse it unless it is Secure, host-only and Path=/, so neither a plain
 * HTTP page nor a sibling domain can plant or overwrite it (RFC 6265bis §4.1.3.2). Over HTTPS only
 * that name is read.
 */
import type { Request } from 'express';
import { HOST_SESSION_COOKIE, SESSION_COOKIE } from '../session-cookie.js';

const overHttps = (req: Request): boolean => (req.socket as { encrypted?: boolean }).encrypted === true;

export const sessionCookieName = (req: Request): string => (overHttps(req) ? HOST_SESSION_COOKIE : SESSION_COOKIE);

/** The session id the request's cookie carries, or undefined. */
export function readSessionCookie(req: Request): string | undefined {
  const name = sessionCookieName(req);
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/** The Set-Cookie value that sets (or, with an empty value and 0, clears) the session cookie. */
export function sessionCookie(req: Request, value: string, maxAgeSeconds: number): string {
  const secure = overHttps(req) ? '; Secure' : '';
  return `${sessionCookieName(req)}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}
