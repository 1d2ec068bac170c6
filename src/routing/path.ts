/**
 * Request-target normalisation before matching (RFC 3986 §5.2.4 dot segments, §6.2.2 percent
 * case), so that no spelling of a path escapes its route's prefix or the upstream's base path.
 */

/** Splits an origin-form target into path and query (with its `?`), query untouched. */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q) };
}

// Encoded `/` or `\` would be a segment separator to some upstreams and not to us: refuse them.
// So is `#`: a request-target has no fragment (RFC 9112 §3.2), and an upstream may cut the path there.
const AMBIGUOUS = /%(2f|5c|00)|[\\#]|[\u0000-\u001f\u007f]/i;
const DOT = /^(?:\.|%2e)$/i;
/**
 * `..;x`, `.;x`, `%2e%2e;jsessionid=1`: Tomcat, Jetty and Spring drop a segment's `;` parameters
 * (RFC 3986 §3.3) before resolving dot segments, so to them this is `..` or `.`, to us a plain name;
 * refused rather than guessed. `%3b` too: some decode it before they drop parameters.
 */
// Stryker disable next-line Regex: dropping `^|` changes nothing, normalizePath tests only paths that start with /
const PARAMETERISED_DOT = /(?:^|\/)(?:\.|%2e){1,2}(?:;|%3b)/i;
const DOT_DOT = /^(?:\.|%2e){2}$/i;

/**
 * The path with `.`/`..` segments (also as %2e) resolved and empty segments dropped, or undefined
 * when the path is ambiguous (PARAMETERISED_DOT among them) or climbs above the root. The fast case
 * (nothing to do) allocates nothing.
 */
export function normalizePath(path: string): string | undefined {
  if (path.charCodeAt(0) !== 47 /* / */) return undefined;
  if (AMBIGUOUS.test(path)) return undefined;
  // Stryker disable next-line ConditionalExpression,StringLiteral: the fast path; the loop below returns such a path unchanged
  if (!path.includes('//') && !path.includes('.') && !/%2e/i.test(path)) return path;
  if (PARAMETERISED_DOT.test(path)) return undefined;
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === '' || DOT.test(segment)) continue;
    if (DOT_DOT.test(segment)) {
      if (out.pop() === undefined) return undefined;
      continue;
    }
    out.push(segment);
  }
  const last = segments[segments.length - 1]!;
  const trailing = out.length > 0 && (last === '' || DOT.test(last) || DOT_DOT.test(last)) ? '/' : '';
  return `/${out.join('/')}${trailing}`;
}
