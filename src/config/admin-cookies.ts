/**
 * The names of the admin console's cookies: the session, and the sign-in in progress of single
 * sign-on (src/admin/sso.ts). The admin listener sets them; the proxy removes them from every
 * request it forwards (a browser sends them to any port of the gateway's host: RFC 6265 §8.5,
 * cookies do not isolate by port). Kept here, apart from both, so neither depends on the other.
 */

/** The session cookie over HTTP. */
export const SESSION_COOKIE = 'tokengate_session';
/** The session cookie over HTTPS: the `__Host-` prefix binds it to the host, `Secure` and `Path=/`. */
export const HOST_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;
/** The single sign-on's sign-in in progress (its state, nonce and PKCE verifier are found by it). */
export const LOGIN_COOKIE = 'tokengate_login';
export const HOST_LOGIN_COOKIE = `__Host-${LOGIN_COOKIE}`;
/** Every admin cookie name; cookie names are case-sensitive (RFC 6265 §5.4), so these exactly. */
export const SESSION_COOKIES: ReadonlySet<string> = new Set([SESSION_COOKIE, HOST_SESSION_COOKIE, LOGIN_COOKIE, HOST_LOGIN_COOKIE]);
