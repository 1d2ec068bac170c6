/**
 * The names of the admin console's session cookie. The admin listener sets it; the proxy removes it
 * from every request it forwards (a browser sends it to any port of the gateway's host: RFC 6265
 * §8.5, cookies do not isolate by port). Kept here, apart from both, so neither depends on the other.
 */

/** The session cookie over HTTP. */
export const SESSION_COOKIE = 'tokengate_session';
/** The session cookie over HTTPS: the `__Host-` prefix binds it to the host, `Secure` and `Path=/`. */
export const HOST_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;
/** Both names; cookie names are case-sensitive (RFC 6265 §5.4), so these exactly. */
export const SESSION_COOKIES: ReadonlySet<string> = new Set([SESSION_COOKIE, HOST_SESSION_COOKIE]);
