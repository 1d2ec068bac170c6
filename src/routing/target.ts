/**
 * The request-target (RFC 9112 §3.2) read once: which authority it names, and the normalised path
 * and the query that routing and forwarding use. Pure; a target the gateway will not route comes
 * back as the reason, and the caller of parseTarget decides how to answer it.
 */
import { normalizePath } from './path.js';
import { hostName } from './router.js';

/** Why a request-target is refused before any route is looked at. */
export const TARGET_REFUSALS = ['unsupported_form', 'ambiguous_path'] as const;
export type TargetRefusal = (typeof TARGET_REFUSALS)[number];

/** What a refusal tells the caller (the problem's detail). */
export const TARGET_REFUSAL_DETAIL: Readonly<Record<TargetRefusal, string>> = {
  unsupported_form: 'unsupported request target',
  ambiguous_path: 'the request path is ambiguous or climbs above the root',
};

export interface RequestTarget {
  /** The Host the caller sent, or the authority of an absolute-form target, as sent. */
  readonly authority: string | undefined;
  /** The authority's host name, lower case, without port (routing/router.ts hostName). */
  readonly host: string | undefined;
  /** Normalised (routing/path.ts): never climbs above `/`, never ambiguous. */
  readonly path: string;
  /** The query with its `?`, untouched; '' when there is none. */
  readonly query: string;
}

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i;

/**
 * `target` as Node read it (req.url), `hostHeader` the Host field. Origin-form (`/p?q`) and
 * absolute-form (`http://a/p?q`) are routed; the authority- and asterisk-forms are not (CONNECT
 * and server-wide OPTIONS are no gateway's business). One object per request, none on refusal.
 */
export function parseTarget(target: string, hostHeader: string | undefined): RequestTarget | TargetRefusal {
  let authority = hostHeader;
  if (target.charCodeAt(0) !== 47 /* / */) {
    // RFC 9112 §3.2.2 absolute-form: its authority replaces Host (for matching and X-Forwarded-Host);
    // it is forwarded only where a route says.
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute === null) return 'unsupported_form';
    authority = absolute[1];
    const rest = absolute[2]!;
    // Stryker disable next-line ConditionalExpression: a `/` before a rest that has one is `//`, which normalizePath folds into one.
    target = rest === '' || rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest;
  }
  const q = target.indexOf('?');
  // Stryker disable next-line EqualityOperator: q is never 0 here, the target starts with `/` by now.
  const path = normalizePath(q < 0 ? target : target.slice(0, q));
  if (path === undefined) return 'ambiguous_path';
  // Stryker disable next-line EqualityOperator: as above, q is never 0.
  return { authority, host: hostName(authority), path, query: q < 0 ? '' : target.slice(q) };
}
