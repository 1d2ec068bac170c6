/**
 * The route index (src/routing/router.ts) against the rule it stands for: routes are tried in
 * config order and the first whose methods, host and path prefix accept the request wins. The
 * linear scan below is that rule written out, and the index must agree with it on every request.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { Route } from '../src/config/types.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { hostName, prefixMatches, Router } from '../src/routing/router.js';

/** The oracle: first match wins, one route after the other. */
function linearMatch(routes: readonly Route[], method: string, host: string | undefined, path: string): Route | undefined {
  return routes.find(
    (route) =>
      (route.match.methods === undefined || route.match.methods.includes(method)) &&
      (route.match.host === undefined || route.match.host.toLowerCase() === host) &&
      prefixMatches(route.match.pathPrefix, path),
  );
}

interface RouteSpec {
  readonly pathPrefix: string;
  readonly methods: string[] | undefined;
  readonly host: string | undefined;
}

async function routesFrom(specs: readonly RouteSpec[]): Promise<readonly Route[]> {
  const yaml = stringify({
    routes: specs.map((spec, i) => ({
      name: `r${i}`,
      match: { pathPrefix: spec.pathPrefix, ...(spec.methods && { methods: spec.methods }), ...(spec.host && { host: spec.host }) },
      upstream: `http://u${i}.example`,
      auth: { type: 'none' },
    })),
  });
  return (await buildConfigTextOnly(yaml, 'routes.yaml')).routes;
}

// Few segment names and hosts, so that random routes overlap, shadow and nest one another.
const segment = fc.constantFrom('a', 'b', 'ab', 'api', 'v1');
const segments = fc.array(segment, { maxLength: 4 });
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH');
const routeSpec: fc.Arbitrary<RouteSpec> = fc.record({
  // With or without a trailing slash, as people write them; the loader normalises it away.
  pathPrefix: fc.tuple(segments, fc.boolean()).map(([parts, slash]) => `/${parts.join('/')}${slash && parts.length > 0 ? '/' : ''}`),
  methods: fc.option(
    fc.uniqueArray(method, { minLength: 1, maxLength: 3 }).map((list) => list.map((m) => (m === 'PUT' ? 'put' : m))),
    { nil: undefined },
  ),
  host: fc.option(fc.constantFrom('one.test', 'Two.Test', 'three.test'), { nil: undefined }),
});
const request = fc.record({
  method,
  host: fc.option(fc.constantFrom('one.test', 'two.test', 'TWO.test:8443', 'four.test'), { nil: undefined }),
  path: fc
    .tuple(segments, fc.constantFrom('', '/', 'x', '/x'))
    .map(([parts, tail]) => `/${parts.join('/')}${parts.length > 0 ? tail : ''}`),
});

describe('route index', () => {
  it('returns exactly the route a first-match linear scan returns, for random route sets and requests', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(routeSpec, { minLength: 1, maxLength: 25 }),
        fc.array(request, { minLength: 1, maxLength: 30 }),
        async (specs, requests) => {
          const routes = await routesFrom(specs);
          const router = new Router(routes, (route) => route.name);
          for (const { method: m, host, path } of requests) {
            const name = hostName(host);
            const expected = linearMatch(routes, m, name, path);
            const actual = router.match(m, name, path);
            assert.equal(actual?.route.name, expected?.name, `${m} ${host ?? '(no host)'} ${path}`);
            if (actual !== undefined) assert.equal(actual.data, actual.route.name);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps first-match-wins among 10,000 routes: the last route is reached, and an earlier catch-all beats a later exact match', async () => {
    const specs: RouteSpec[] = Array.from({ length: 10_000 }, (_, i) => ({
      pathPrefix: `/tenant-${i}/api`,
      methods: undefined,
      host: undefined,
    }));
    const routes = await routesFrom([...specs, { pathPrefix: '/tenant-9999', methods: ['GET'], host: 'one.test' }]);
    const router = new Router(routes, (route) => route.name);
    assert.equal(router.match('GET', undefined, '/tenant-9999/api/items')?.route.name, 'r9999');
    assert.equal(router.match('GET', 'one.test', '/tenant-9999/other')?.route.name, 'r10000');
    assert.equal(router.match('POST', 'one.test', '/tenant-9999/other'), undefined);
    assert.equal(router.match('GET', undefined, '/tenant-10000/api'), undefined);

    const shadowing = await routesFrom([{ pathPrefix: '/', methods: ['POST'], host: undefined }, ...specs.slice(0, 100)]);
    const shadowed = new Router(shadowing, (route) => route.name);
    assert.equal(shadowed.match('POST', undefined, '/tenant-42/api')?.route.name, 'r0');
    assert.equal(shadowed.match('GET', undefined, '/tenant-42/api')?.route.name, 'r43');
  });

  it('looks no deeper into a long path than the longest prefix, and still matches the shallow ones', async () => {
    const routes = await routesFrom([
      { pathPrefix: '/a/b', methods: undefined, host: undefined },
      { pathPrefix: '/a', methods: undefined, host: undefined },
    ]);
    const router = new Router(routes, (route) => route.name);
    const deep = `/a/b${'/c'.repeat(20_000)}`;
    assert.equal(router.match('GET', undefined, deep)?.route.name, 'r0');
    assert.equal(router.match('GET', undefined, `/a${'/c'.repeat(20_000)}`)?.route.name, 'r1');
  });

  it('withData gives every route new data and matches exactly as the router it came from', async () => {
    const routes = await routesFrom([
      { pathPrefix: '/a', methods: ['GET'], host: undefined },
      { pathPrefix: '/a', methods: undefined, host: 'one.test' },
      { pathPrefix: '/', methods: undefined, host: undefined },
    ]);
    const built = new Router(routes, (route) => route.name);
    const bound = built.withData((name, route) => ({ name, prefix: route.match.pathPrefix }));
    assert.deepEqual(
      bound.routes.map((match) => match.data),
      [
        { name: 'r0', prefix: '/a' },
        { name: 'r1', prefix: '/a' },
        { name: 'r2', prefix: '/' },
      ],
    );
    for (const [method, host, path] of [
      ['GET', undefined, '/a/x'],
      ['POST', 'one.test', '/a/x'],
      ['POST', undefined, '/a/x'],
      ['GET', 'two.test', '/b'],
    ] as const) {
      const before = built.match(method, host, path);
      const after = bound.match(method, host, path);
      assert.equal(after?.route, before?.route, `${method} ${host ?? '-'} ${path}`);
      assert.equal(after?.data.name, before?.data);
    }
    assert.equal(bound.match('POST', 'one.test', '/a/x')?.data.name, 'r1');
  });
});
