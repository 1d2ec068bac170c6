/**
 * The routing pieces on their own, one behaviour per test, so that each line of src/routing has a
 * test that fails when it changes (test/README.md, "Mutation testing"): target splitting, path
 * normalisation, prefix matching, the route index's edges, host names and the upstream path. Pure
 * functions, no gateway: each mutant costs Stryker a second, not a gateway start.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { normalizePath, splitTarget } from '../src/routing/path.js';
import { hostName, prefixMatches, Router, upstreamPath, type RoutePattern } from '../src/routing/router.js';
import { parseTarget } from '../src/routing/target.js';

/** A route as the Router reads it (RoutePattern), named so a test can say which one matched. */
interface NamedRoute extends RoutePattern {
  readonly name: string;
}

function route(name: string, pathPrefix: string, options: { methods?: string[]; host?: string; stripPrefix?: boolean } = {}): NamedRoute {
  return { name, match: { pathPrefix, methods: options.methods, host: options.host }, stripPrefix: options.stripPrefix ?? false };
}

const routerOf = (...routes: NamedRoute[]) => new Router(routes, (r) => `data:${r.name}`);
const matched = (router: Router<string, NamedRoute>, method: string, host: string | undefined, path: string) =>
  router.match(method, host, path)?.route.name;

describe('splitTarget', () => {
  it('splits at the first ?, the query keeping its ? and every later ?', () => {
    assert.deepEqual(splitTarget('/a/b?x=1?y=2'), { path: '/a/b', query: '?x=1?y=2' });
  });

  it('gives an empty query when there is no ?', () => {
    assert.deepEqual(splitTarget('/a/b'), { path: '/a/b', query: '' });
  });

  it('gives an empty path when the target starts with ?', () => {
    assert.deepEqual(splitTarget('?q'), { path: '', query: '?q' });
  });
});

describe('normalizePath', () => {
  it('refuses a path that does not start with /', () => {
    for (const path of ['', 'a/b', '*', '.', '%2fa']) assert.equal(normalizePath(path), undefined, path);
  });

  it('leaves a path with nothing to resolve exactly as it was', () => {
    for (const path of ['/', '/a', '/a/b/', '/a b/c~d', '/%41%2d', '/a;b=c/d']) assert.equal(normalizePath(path), path, path);
  });

  it('refuses an encoded /, \\ or NUL in either case, a raw \\, a # and control characters', () => {
    const ambiguous = [
      '/a%2fb',
      '/a%2Fb',
      '/a%5cb',
      '/a%5Cb',
      '/a%00b',
      '/a\\b',
      '/a#b',
      '/a\u0000b',
      '/a\u0001b',
      '/a\u001fb',
      '/a\u007fb',
    ];
    for (const path of ambiguous) assert.equal(normalizePath(path), undefined, JSON.stringify(path));
    // The edges of the refused ranges are ordinary characters.
    for (const path of ['/a%2gb', '/a%5db', '/a%01b', '/a b', '/a~b', '/a%2eb']) assert.notEqual(normalizePath(path), undefined, path);
  });

  it('drops empty segments', () => {
    assert.equal(normalizePath('//a'), '/a');
    assert.equal(normalizePath('/a//b'), '/a/b');
    assert.equal(normalizePath('/a///b//'), '/a/b/');
  });

  it('drops . segments, also as %2e in either case', () => {
    assert.equal(normalizePath('/a/./b'), '/a/b');
    assert.equal(normalizePath('/a/%2e/b'), '/a/b');
    assert.equal(normalizePath('/a/%2E/b'), '/a/b');
  });

  it('resolves .. segments against the one before, also as %2e%2e, .%2e and %2e.', () => {
    for (const dots of ['..', '%2e%2e', '%2E%2E', '.%2e', '%2e.']) assert.equal(normalizePath(`/a/b/${dots}/c`), '/a/c', dots);
  });

  it('refuses a path whose .. climbs above the root', () => {
    for (const path of ['/..', '/../a', '/a/../..', '/a/../../b', '/%2e%2e/a', '/./..']) assert.equal(normalizePath(path), undefined, path);
  });

  it('keeps names that only contain dots, or end or start with one, as plain names', () => {
    for (const path of ['/a/...', '/a/.b', '/a/b.', '/a/x.y', '/a/%2e%2e%2e', '/a/..b', '/a/b..'])
      assert.equal(normalizePath(path), path, path);
    assert.equal(normalizePath('/a/.../..'), '/a/');
  });

  it('refuses . and .. with ; parameters, the ; raw or as %3b, anywhere in the path', () => {
    const refused = ['/.;x/a', '/..;x/a', '/a/.;x', '/a/..;/b', '/a/%2e%2e;jsessionid=1/b', '/a/%2e%3bx', '/a/..%3Bx', '/a/.%2e;x'];
    for (const path of refused) assert.equal(normalizePath(path), undefined, path);
  });

  it('lets a ; follow anything but a lone . or .. segment', () => {
    for (const path of ['/a/b.;x', '/a/x..;y', '/a/...;x', '/a/b;.', '/a/.b;x']) assert.equal(normalizePath(path), path, path);
    assert.equal(normalizePath('/a/./b;x'), '/a/b;x');
  });

  it('keeps a trailing / when the path ends in /, /. or /.. and something is left', () => {
    assert.equal(normalizePath('/a/b/'), '/a/b/');
    assert.equal(normalizePath('/a/b/.'), '/a/b/');
    assert.equal(normalizePath('/a/b/%2e'), '/a/b/');
    assert.equal(normalizePath('/a/b/..'), '/a/');
    assert.equal(normalizePath('/a/b/%2e%2e'), '/a/');
    assert.equal(normalizePath('/a/./b'), '/a/b');
  });

  it('gives / when nothing is left, never //', () => {
    for (const path of ['/.', '/a/..', '/a/../', '/./', '//', '/a/b/../..']) assert.equal(normalizePath(path), '/', path);
  });

  it('agrees with resolving the segments by hand, for any mix of names, dots and slashes', () => {
    const segment = fc.constantFrom('', '.', '..', '%2e', '%2E%2e', 'a', 'b', '...', '.a', 'a.');
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
        const raw = `/${segments.join('/')}`;
        const stack: string[] = [];
        let climbed = false;
        for (const part of segments) {
          const decoded = part.replace(/%2e/gi, '.');
          if (decoded === '..') climbed ||= stack.pop() === undefined;
          else if (decoded !== '.' && part !== '') stack.push(part);
        }
        const last = segments.at(-1)?.replace(/%2e/gi, '.');
        const trailing = stack.length > 0 && (last === '' || last === '.' || last === '..') ? '/' : '';
        assert.equal(normalizePath(raw), climbed ? undefined : `/${stack.join('/')}${trailing}`, raw);
      }),
      { numRuns: 300 },
    );
  });
});

describe('prefixMatches', () => {
  it('matches every path under /', () => {
    for (const path of ['/', '/a', '/a/b']) assert.equal(prefixMatches('/', path), true, path);
  });

  it('matches the prefix itself and what continues it after a /', () => {
    assert.equal(prefixMatches('/api', '/api'), true);
    assert.equal(prefixMatches('/api', '/api/'), true);
    assert.equal(prefixMatches('/api', '/api/v1'), true);
  });

  it('never matches a longer segment, a shorter path or another path', () => {
    assert.equal(prefixMatches('/api', '/apis'), false);
    assert.equal(prefixMatches('/api', '/ap'), false);
    assert.equal(prefixMatches('/api', '/v1/api'), false);
    assert.equal(prefixMatches('/api', '/'), false);
  });
});

describe('hostName', () => {
  it('is undefined without a Host header', () => {
    assert.equal(hostName(undefined), undefined);
  });

  it('drops the port and lower-cases the name', () => {
    assert.equal(hostName('API.Example:8443'), 'api.example');
    assert.equal(hostName('API.Example'), 'api.example');
  });

  it('keeps an IPv6 literal with its brackets, without the port', () => {
    assert.equal(hostName('[::1]:8080'), '[::1]');
    assert.equal(hostName('[FE80::1]'), '[fe80::1]');
  });

  it('keeps a header it cannot cut (an unclosed bracket, nothing before the colon) whole', () => {
    assert.equal(hostName('[::1'), '[::1');
    assert.equal(hostName(':80'), ':80');
  });
});

describe('Router', () => {
  it('attaches the data built for each route, and lists every route in config order', () => {
    const router = routerOf(route('a', '/a'), route('b', '/a'), route('c', '/'));
    assert.deepEqual(
      router.routes.map((r) => [r.route.name, r.data]),
      [
        ['a', 'data:a'],
        ['b', 'data:b'],
        ['c', 'data:c'],
      ],
    );
    assert.equal(router.match('GET', undefined, '/a/x')?.data, 'data:a');
  });

  it('matches a / route against every path, and nothing when no route matches', () => {
    assert.equal(matched(routerOf(route('root', '/')), 'GET', undefined, '/any/thing'), 'root');
    assert.equal(matched(routerOf(route('a', '/a')), 'GET', undefined, '/b'), undefined);
  });

  it('matches a path that is exactly the prefix, or continues it after a /, never a longer segment', () => {
    const router = routerOf(route('ab', '/a/b'));
    assert.equal(matched(router, 'GET', undefined, '/a/b'), 'ab');
    assert.equal(matched(router, 'GET', undefined, '/a/b/'), 'ab');
    assert.equal(matched(router, 'GET', undefined, '/a/b/c/d'), 'ab');
    assert.equal(matched(router, 'GET', undefined, '/a/bc'), undefined);
    assert.equal(matched(router, 'GET', undefined, '/a/bc/d'), undefined);
    assert.equal(matched(router, 'GET', undefined, '/a'), undefined);
  });

  it('finds a short prefix behind a longer one in the index, whatever the path length', () => {
    // The longest prefix (/a/b/c/d) bounds how deep the index looks; /a must still be found on the way.
    const router = routerOf(route('deep', '/a/b/c/d'), route('mid', '/a/b/c'), route('short', '/a'));
    assert.equal(matched(router, 'GET', undefined, '/a/b/c/d/e/f/g'), 'deep');
    assert.equal(matched(router, 'GET', undefined, '/a/x/y/z/w/v'), 'short');
    assert.equal(matched(router, 'GET', undefined, '/a/b/c/x/y/z'), 'mid');
    assert.equal(matched(router, 'GET', undefined, '/a/b/c/dd'), 'mid');
    assert.equal(matched(router, 'GET', undefined, '/a'), 'short');
  });

  it('matches a path as long as the longest prefix, and one cut mid-segment at that length', () => {
    const router = routerOf(route('long', '/abc'), route('short', '/a'));
    assert.equal(matched(router, 'GET', undefined, '/abc'), 'long');
    assert.equal(matched(router, 'GET', undefined, '/abcd'), undefined);
    assert.equal(matched(router, 'GET', undefined, '/a/bcd'), 'short');
    assert.equal(matched(router, 'GET', undefined, '/abcd/e'), undefined);
  });

  it('lets the earlier of two matching routes win, whichever prefix is longer', () => {
    assert.equal(matched(routerOf(route('outer', '/a'), route('inner', '/a/b')), 'GET', undefined, '/a/b/c'), 'outer');
    assert.equal(matched(routerOf(route('inner', '/a/b'), route('outer', '/a')), 'GET', undefined, '/a/b/c'), 'inner');
    assert.equal(matched(routerOf(route('root', '/'), route('inner', '/a/b')), 'GET', undefined, '/a/b/c'), 'root');
    assert.equal(matched(routerOf(route('inner', '/a/b'), route('root', '/')), 'GET', undefined, '/a/b/c'), 'inner');
  });

  it('keeps every route with the same prefix, so a later one answers the methods the earlier refuses', () => {
    const router = routerOf(route('get', '/a', { methods: ['GET'] }), route('post', '/a', { methods: ['POST'] }), route('any', '/a'));
    assert.equal(matched(router, 'GET', undefined, '/a'), 'get');
    assert.equal(matched(router, 'POST', undefined, '/a'), 'post');
    assert.equal(matched(router, 'PUT', undefined, '/a'), 'any');
  });

  it('keeps a route after others with the same prefix when it accepts a method none of them does', () => {
    const router = routerOf(route('get', '/a', { methods: ['GET'] }), route('get-or-put', '/a', { methods: ['GET', 'PUT'] }));
    assert.equal(matched(router, 'GET', undefined, '/a'), 'get');
    assert.equal(matched(router, 'PUT', undefined, '/a'), 'get-or-put');
    assert.equal(matched(router, 'POST', undefined, '/a'), undefined);
  });

  it('leaves out of the index a route whose methods earlier routes with its prefix all accept: a miss checks each method filter once', () => {
    const router = routerOf(
      route('get', '/a', { methods: ['GET'] }),
      route('get-again', '/a', { methods: ['GET'] }),
      route('get-or-post', '/a', { methods: ['GET', 'POST'] }),
      route('post-again', '/a', { methods: ['POST'] }),
      route('any', '/a'),
    );
    // Every method check is a Set look-up: count them for one request that only the last route takes.
    const has = Object.getOwnPropertyDescriptor(Set.prototype, 'has')!.value as (this: Set<unknown>, value: unknown) => boolean;
    let checks = 0;
    Set.prototype.has = function (this: Set<unknown>, value: unknown) {
      checks++;
      return has.call(this, value);
    };
    try {
      assert.equal(matched(router, 'DELETE', undefined, '/a'), 'any');
    } finally {
      Set.prototype.has = has;
    }
    assert.equal(checks, 2, 'get and get-or-post; get-again and post-again can never win');
  });

  it('falls through to a later route with a shorter prefix when the methods refuse', () => {
    const router = routerOf(route('post', '/a/b', { methods: ['POST'] }), route('any', '/a'));
    assert.equal(matched(router, 'GET', undefined, '/a/b'), 'any');
    assert.equal(matched(router, 'POST', undefined, '/a/b'), 'post');
  });

  it('matches a host route only for that host, compared lower-case', () => {
    const router = routerOf(route('hosted', '/a', { host: 'API.Internal' }), route('other', '/a', { host: 'b.internal' }));
    assert.equal(matched(router, 'GET', 'api.internal', '/a'), 'hosted');
    assert.equal(matched(router, 'GET', 'b.internal', '/a'), 'other');
    assert.equal(matched(router, 'GET', 'c.internal', '/a'), undefined);
    assert.equal(matched(router, 'GET', undefined, '/a'), undefined);
  });

  it('keeps every route of one host, each in its place in the config order', () => {
    const router = routerOf(
      route('h-get', '/a', { host: 'h', methods: ['GET'] }),
      route('any-host', '/a', { methods: ['GET', 'POST'] }),
      route('h-put', '/a', { host: 'h' }),
    );
    assert.equal(matched(router, 'GET', 'h', '/a'), 'h-get');
    assert.equal(matched(router, 'POST', 'h', '/a'), 'any-host');
    assert.equal(matched(router, 'PUT', 'h', '/a'), 'h-put');
    assert.equal(matched(router, 'PUT', undefined, '/a'), undefined);
  });

  it('lets an earlier route for any host beat a later one for this host, and the reverse', () => {
    const anyFirst = routerOf(route('any', '/a'), route('hosted', '/a', { host: 'h' }));
    assert.equal(matched(anyFirst, 'GET', 'h', '/a'), 'any');
    const hostFirst = routerOf(route('hosted', '/a', { host: 'h' }), route('any', '/'));
    assert.equal(matched(hostFirst, 'GET', 'h', '/a'), 'hosted');
    assert.equal(matched(hostFirst, 'GET', 'other', '/a'), 'any');
  });
});

describe('upstreamPath', () => {
  it('strips the prefix and appends the rest to the base path', () => {
    const r = route('r', '/partner', { stripPrefix: true });
    assert.equal(upstreamPath(r, '/v2', '/partner/orders/1'), '/v2/orders/1');
    assert.equal(upstreamPath(r, '/v2', '/partner'), '/v2');
  });

  it('gives / when stripping leaves nothing and there is no base path', () => {
    assert.equal(upstreamPath(route('r', '/partner', { stripPrefix: true }), '', '/partner'), '/');
  });

  it('keeps the whole path without stripPrefix', () => {
    assert.equal(upstreamPath(route('r', '/partner'), '/v2', '/partner/orders'), '/v2/partner/orders');
    assert.equal(upstreamPath(route('r', '/partner'), '', '/partner'), '/partner');
  });

  it('strips nothing from a / prefix, so the path keeps its leading /', () => {
    assert.equal(upstreamPath(route('r', '/', { stripPrefix: true }), '/v2', '/orders'), '/v2/orders');
    assert.equal(upstreamPath(route('r', '/', { stripPrefix: true }), '', '/'), '/');
  });
});

describe('parseTarget', () => {
  it('routes an absolute-form target only when it starts with the scheme', () => {
    assert.equal(parseTarget('xhttp://a.example/b', 'h.example'), 'unsupported_form');
    assert.equal(parseTarget('ftp://a.example/b', 'h.example'), 'unsupported_form');
    assert.deepEqual(parseTarget('HTTP://A.example:8080/b?q', 'h.example'), {
      authority: 'A.example:8080',
      host: 'a.example',
      path: '/b',
      query: '?q',
    });
  });

  it('refuses an absolute-form target with a line break in it rather than route the part before it', () => {
    assert.equal(parseTarget('http://a.example/b\nGET /admin', 'h.example'), 'unsupported_form');
  });
});

describe('Router.withData', () => {
  it('attaches new data to each route over the same index: the same matches, the new data', () => {
    const router = routerOf(route('a', '/a'), route('b', '/a/b', { methods: ['POST'] }), route('c', '/', { host: 'c.example' }));
    const renamed = router.withData((data, r) => `${data}+${r.name}`);
    for (const [method, host, path] of [
      ['GET', undefined, '/a/b'],
      ['POST', undefined, '/a/b/c'],
      ['GET', 'c.example', '/x'],
      ['GET', undefined, '/x'],
    ] as const) {
      assert.equal(renamed.match(method, host, path)?.route.name, router.match(method, host, path)?.route.name);
      const data = renamed.match(method, host, path)?.data;
      const name = router.match(method, host, path)?.route.name;
      assert.equal(data, name === undefined ? undefined : `data:${name}+${name}`);
    }
  });
});
