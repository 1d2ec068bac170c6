/**
 * Routes compiled once per config; `match` is pure and allocation-free. Routes are tried in
 * order and the first match wins.
 */
import type { Route } from '../config/load.js';

export interface CompiledMatch<T> {
  readonly route: Route;
  /** Whatever the caller attached at compile time (forwarding target, metric children, ...). */
  readonly data: T;
}

interface Entry<T> extends CompiledMatch<T> {
  readonly prefix: string;
  readonly methods: ReadonlySet<string> | undefined;
  readonly host: string | undefined;
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

export class Router<T> {
  readonly #entries: readonly Entry<T>[];

  constructor(routes: readonly Route[], attach: (route: Route) => T) {
    this.#entries = routes.map((route) => ({
      route,
      data: attach(route),
      prefix: route.match.pathPrefix,
      methods: route.match.methods === undefined ? undefined : new Set(route.match.methods),
      host: route.match.host?.toLowerCase(),
    }));
  }

  /** `path` must already be normalised (routing/path.ts); `host` as from hostName(). */
  match(method: string, host: string | undefined, path: string): CompiledMatch<T> | undefined {
    for (const entry of this.#entries) {
      if (entry.methods !== undefined && !entry.methods.has(method)) continue;
      if (entry.host !== undefined && entry.host !== host) continue;
      if (prefixMatches(entry.prefix, path)) return entry;
    }
    return undefined;
  }

  get routes(): readonly CompiledMatch<T>[] {
    return this.#entries;
  }
}

/** The path sent upstream: prefix stripped when asked, appended to the upstream's base path. */
export function upstreamPath(route: Route, basePath: string, path: string): string {
  const rest = route.stripPrefix && route.match.pathPrefix !== '/' ? path.slice(route.match.pathPrefix.length) : path;
  const joined = basePath + rest;
  return joined === '' ? '/' : joined;
}
