/**
 * Routes compiled once per config; `match` is pure. Routes are tried in order and the first match
 * wins, but a match does not try them one by one: an index by host and by path prefix finds the
 * few routes that can match a path, and the lowest-ordered of those that do is the answer. A match
 * costs the same with 10,000 routes as with 10.
 */

/**
 * What routing reads of a route (config/types.ts's Route is one): routing sits below the config,
 * so it names only the fields it uses.
 */
export interface RoutePattern {
  readonly match: {
    readonly pathPrefix: string;
    readonly host?: string | undefined;
    readonly methods?: readonly string[] | undefined;
  };
  readonly stripPrefix: boolean;
}

export interface CompiledMatch<T, R extends RoutePattern = RoutePattern> {
  readonly route: R;
  /** Whatever the caller attached at compile time (forwarding target, metric children, ...). */
  readonly data: T;
}

interface Entry<R extends RoutePattern> {
  readonly route: R;
  /** The route's position in the config: the lower wins. */
  readonly order: number;
  readonly prefix: string;
  readonly methods: ReadonlySet<string> | undefined;
  readonly host: string | undefined;
}

/**
 * Routes by exact pathPrefix, each list in config order. A normalised prefix is `/` or non-empty
 * segments joined by `/`, so the prefixes a path can match are the path cut at each `/` (and the
 * whole path): one map look-up per segment of the path, never one per route.
 */
class PrefixIndex<R extends RoutePattern> {
  readonly #byPrefix = new Map<string, Entry<R>[]>();
  /** Matching never looks deeper than the longest prefix: a long path costs no more than that. */
  #maxLength = 0;

  add(entry: Entry<R>): void {
    let list = this.#byPrefix.get(entry.prefix);
    if (list === undefined) this.#byPrefix.set(entry.prefix, (list = []));
    // A route behind others with the same prefix and host that accept all of its methods can never
    // win: leaving it out keeps each list as short as the number of distinct method filters.
    if (shadowed(list, entry.methods)) return;
    list.push(entry);
    // Stryker disable next-line EqualityOperator: >= only rewrites the same length
    if (entry.prefix.length > this.#maxLength) this.#maxLength = entry.prefix.length;
  }

  /** The lowest-ordered entry whose prefix matches `path` and that accepts `method`, below `best`. */
  match(method: string, path: string, best: Entry<R> | undefined): Entry<R> | undefined {
    best = firstAccepting(this.#byPrefix.get('/'), method, best);
    // Stryker disable next-line ConditionalExpression: every prefix starts with /, so the loop finds none for such a path
    if (path.charCodeAt(0) !== 47 /* / */) return best;
    const end = Math.min(path.length, this.#maxLength);
    // Stryker disable next-line StringLiteral: indexOf('') walks each character; the cuts not at a / are skipped below
    for (let slash = path.indexOf('/', 1); ; slash = path.indexOf('/', slash + 1)) {
      // prefixMatches: the prefix is the whole path, or the path continues with a `/`.
      // Stryker disable next-line EqualityOperator,ConditionalExpression: slash is never 0, and past `end` no cut can match
      const cut = slash < 0 || slash > end ? end : slash;
      if (cut === path.length || path.charCodeAt(cut) === 47) best = firstAccepting(this.#byPrefix.get(path.slice(0, cut)), method, best);
      // Stryker disable next-line EqualityOperator,ConditionalExpression: slash is never 0; past `end` the loop re-checks `end` only
      if (slash < 0 || slash >= end) return best;
    }
  }
}

function shadowed<R extends RoutePattern>(list: readonly Entry<R>[], methods: ReadonlySet<string> | undefined): boolean {
  const covered = new Set<string>();
  for (const earlier of list) {
    // Stryker disable next-line BooleanLiteral: an entry behind a method-less one is never reached; keeping it costs memory only
    if (earlier.methods === undefined) return true;
    for (const method of earlier.methods) covered.add(method);
  }
  // Stryker disable next-line ConditionalExpression: on an empty list the loop below returns false anyway
  if (methods === undefined || list.length === 0) return false;
  for (const method of methods) if (!covered.has(method)) return false;
  return true;
}

/** The first entry of `list` (config order) that accepts `method`, if it comes before `best`. */
function firstAccepting<R extends RoutePattern>(
  list: readonly Entry<R>[] | undefined,
  method: string,
  best: Entry<R> | undefined,
): Entry<R> | undefined {
  if (list === undefined) return best;
  for (const entry of list) {
    // Stryker disable next-line EqualityOperator: no two entries share an order, so > and >= agree
    if (best !== undefined && entry.order >= best.order) return best;
    if (entry.methods === undefined || entry.methods.has(method)) return entry;
  }
  return best;
}

/** `Host` header → lower-case host name without port (`[::1]:8080` → `[::1]`). */
export function hostName(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const end = header.startsWith('[') ? header.indexOf(']') + 1 : header.indexOf(':');
  return (end > 0 ? header.slice(0, end) : header).toLowerCase();
}

/** pathPrefix matches on segment boundaries: /partner matches /partner and /partner/x, not /partnership. */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47); /* / */
}

/** The index of a route list by host and path prefix: built once, shared by every Router over it. */
export class RouteIndex<R extends RoutePattern> {
  readonly routes: readonly R[];
  /** Routes without a host filter. */
  readonly #anyHost = new PrefixIndex<R>();
  /** Routes with one, by that host (lower case). */
  readonly #byHost = new Map<string, PrefixIndex<R>>();

  constructor(routes: readonly R[]) {
    this.routes = routes;
    for (const [order, route] of routes.entries()) {
      const entry: Entry<R> = {
        route,
        order,
        prefix: route.match.pathPrefix,
        methods: route.match.methods === undefined ? undefined : new Set(route.match.methods),
        host: route.match.host?.toLowerCase(),
      };
      let index = this.#anyHost;
      if (entry.host !== undefined) {
        index = this.#byHost.get(entry.host) ?? new PrefixIndex<R>();
        this.#byHost.set(entry.host, index);
      }
      index.add(entry);
    }
  }

  /** The order of the first route that matches, or undefined. */
  match(method: string, host: string | undefined, path: string): number | undefined {
    const best = this.#anyHost.match(method, path, undefined);
    // Stryker disable next-line ConditionalExpression: the map's keys are strings, so get(undefined) is undefined too
    const byHost = host === undefined ? undefined : this.#byHost.get(host);
    return (byHost === undefined ? best : byHost.match(method, path, best))?.order;
  }
}

export class Router<T, R extends RoutePattern = RoutePattern> {
  readonly #index: RouteIndex<R>;
  /** By route order. */
  readonly #matches: readonly CompiledMatch<T, R>[];

  /** `routes` may be the index of another Router: the routes are then not indexed again (withData). */
  constructor(routes: readonly R[] | RouteIndex<R>, attach: (route: R, order: number) => T) {
    this.#index = routes instanceof RouteIndex ? routes : new RouteIndex(routes);
    this.#matches = this.#index.routes.map((route, order) => ({ route, data: attach(route, order) }));
  }

  /** `path` must already be normalised (routing/path.ts); `host` as from hostName(). */
  match(method: string, host: string | undefined, path: string): CompiledMatch<T, R> | undefined {
    const order = this.#index.match(method, host, path);
    // Stryker disable next-line ConditionalExpression: #matches[undefined] is undefined too; the check says what is meant
    return order === undefined ? undefined : this.#matches[order];
  }

  get routes(): readonly CompiledMatch<T, R>[] {
    return this.#matches;
  }

  /**
   * The same routes, with other data attached to each, over the same index: what a commit does
   * to a route table built ahead of it costs one object per route and cannot fail on the routes.
   */
  withData<U>(attach: (data: T, route: R) => U): Router<U, R> {
    return new Router(this.#index, (route, order) => attach(this.#matches[order]!.data, route));
  }
}

/** The path sent upstream: prefix stripped when asked, appended to the upstream's base path. */
export function upstreamPath(route: RoutePattern, basePath: string, path: string): string {
  const rest = route.stripPrefix && route.match.pathPrefix !== '/' ? path.slice(route.match.pathPrefix.length) : path;
  const joined = basePath + rest;
  return joined === '' ? '/' : joined;
}
