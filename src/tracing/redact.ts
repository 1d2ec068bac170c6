/**
 * URLs as spans may show them. A query value can be a token, an API key or a signature (OAuth's
 * own RFC 6750 §2.3 puts the access token there), so spans keep only the parameter names, as
 * Traefik's tracing does by default; OpenTelemetry's URL conventions ask for the same kind of
 * redaction of `url.query` and `url.full`.
 */

export const REDACTED = 'REDACTED';

/**
 * `a=1&b&c=x=y` → `a=REDACTED&b&c=REDACTED`: every `name=value` pair keeps its name and loses its
 * value; a pair without `=` is a bare name and stays. The query is taken without its leading `?`.
 */
export function redactQuery(query: string): string {
  let out = '';
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const equals = query.indexOf('=', start);
    out += equals === -1 || equals > end ? query.slice(start, end) : `${query.slice(start, equals)}=${REDACTED}`;
    if (end === query.length) break;
    out += '&';
    start = end + 1;
  }
  return out;
}

/**
 * An absolute URL for `url.full`: scheme, host and path as they are, the query redacted, and no
 * user or password (the conventions' rule for credentials in the authority) nor fragment.
 */
export function redactUrl(origin: string, pathAndQuery: string): string {
  const mark = pathAndQuery.indexOf('?');
  return mark === -1 ? origin + pathAndQuery : `${origin}${pathAndQuery.slice(0, mark)}?${redactQuery(pathAndQuery.slice(mark + 1))}`;
}

/** `url.full` for a configured URL (a token endpoint): its userinfo and fragment are dropped. */
export function redactAbsoluteUrl(url: URL): string {
  return redactUrl(`${url.protocol}//${url.host}`, url.pathname + url.search);
}
