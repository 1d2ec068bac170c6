/**
 * Property: a live gateway (`node dist/cli.js serve`) reloaded with random mutations of a config
 * that uses every feature never exits, keeps /healthz and /readyz at 200, refuses exactly the
 * configs the pipeline (the function `validate` runs) refuses, and after a refused reload still
 * serves the old routes with injected tokens. Each mutation is followed by a return to the base.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigText } from '../src/runtime/build.js';
import { startLiveGateway, type LiveGateway } from './support/live-config.js';
import { runCli } from './support/processes.js';

const RUNS = 300;
/** Every how many mutations the CLI's `validate` is spawned on the same file as well. */
const CLI_SAMPLE_EVERY = 60;

type Path = ReadonlyArray<string | number>;
type Mutation =
  | { kind: 'set'; path: Path; value: unknown }
  | { kind: 'delete'; path: Path }
  | { kind: 'duplicate'; path: Path }
  | { kind: 'unknown'; path: Path; key: string }
  | { kind: 'duplicate-line'; line: number };

/** Every key path of a value: objects, arrays and leaves. */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const entries = Array.isArray(value) ? value.map((item, i) => [i, item] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([key, item]) => pathsOf(item, [...prefix, key]))];
}

const cidr = fc.oneof(
  fc.constantFrom(
    '10.0.0.0/8',
    '::1/128',
    'zz:zz/64',
    'gggg::/16',
    '::1::/64',
    '1:2:3:4:5:6:7:8:9/64',
    '10.0.0.0/33',
    '10.0.0.0/',
    '1.2.3.4',
    '::ffff:1.2.3.4/96',
    'fe80::1%eth0/64',
    '0.0.0.0/0',
    '010.0.0.1/8',
    '1.2.3.4/08',
    '1.2.3.4/-1',
    '256.1.1.1/8',
  ),
  fc.tuple(fc.ipV4(), fc.nat(40)).map(([ip, bits]) => `${ip}/${bits}`),
  fc.tuple(fc.ipV6(), fc.nat(140)).map(([ip, bits]) => `${ip}/${bits}`),
);
// Loopback and .example hosts only: an accepted mutation must never point the gateway elsewhere.
const url = fc.oneof(
  fc.constantFrom(
    'http://127.0.0.1:1',
    'https://bücher.example/x',
    'ftp://127.0.0.1/',
    'http://u:p@127.0.0.1/',
    'http://127.0.0.1/?q=1',
    'http://127.0.0.1/#f',
    'http://[::1]:1/',
    'not a url',
    'http://127.0.0.1:99999/',
    'http://api.example/',
    'https://api.example/base/',
  ),
  fc.webPath().map((path) => `http://127.0.0.1:1${path}`),
);
const host = fc.oneof(
  fc.constantFrom('bücher.example', 'x y', '[::1]', '[zz]', 'a:80', 'xn--bcher-kva.example', 'EXAMPLE.com', '', '.', 'a..b', 'a/b'),
  fc.domain(),
);
const header = fc.oneof(fc.constantFrom('x bad', 'X-Ok', 'a:b', '', 'x\u00e9', 'X-Gateway-Key', 'x\ty'), fc.string({ maxLength: 8 }));
const pathPrefix = fc.oneof(fc.constantFrom('/a', 'a', '/a/../b', '//', '/%2F', '/a/', '/', '/ä', '/a b'), fc.webPath());
const method = fc.constantFrom('GET', 'get', 'G E T', '', 'PURGE', 'M-SEARCH', 'POST');
const number = fc.oneof(
  fc.constantFrom(0, -1, 1.5, 2 ** 31 - 1, 2 ** 31, 1e300, 65535, 65536, 1023, 1024),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const secretName = fc.constantFrom('client-secret', 'jwt-key', 'gate-key', 'nope', '');
const random = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 6 }), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
);

/** A value shaped like what the key at `path` expects, or a random one. */
function valueFor(path: Path): fc.Arbitrary<unknown> {
  const key = String(path.at(-1));
  const parent = String(path.at(-2));
  const shaped: Array<fc.Arbitrary<unknown>> = [];
  if (parent === 'allowFrom' || key === 'allowFrom') shaped.push(key === 'allowFrom' ? fc.array(cidr, { maxLength: 3 }) : cidr);
  if (['tokenUrl', 'issuer', 'upstream', 'url'].includes(key)) shaped.push(url);
  if (key === 'host') shaped.push(host);
  if (key === 'header') shaped.push(header);
  if (key === 'pathPrefix') shaped.push(pathPrefix);
  if (parent === 'methods' || key === 'methods') shaped.push(key === 'methods' ? fc.array(method, { maxLength: 3 }) : method);
  if (/Ms$|Seconds$|port$|maxAttempts$|Limit$|Bytes$/.test(key)) shaped.push(number);
  if (['secret', 'ca', 'certificate', 'key'].includes(key)) shaped.push(secretName);
  if (key === 'file') shaped.push(fc.constantFrom('client-key.pem', 'missing.pem', '.', '..', '/dev/null', 'client-key.pem/x'));
  if (key === 'env') shaped.push(fc.constantFrom('TG_LIVE_CLIENT_SECRET', 'TG_UNSET_FOR_SURE', ''));
  return shaped.length === 0 ? random : fc.oneof(...shaped, random);
}

function mutationArb(paths: readonly Path[], lines: number): fc.Arbitrary<Mutation> {
  const path = fc.constantFrom(...paths);
  return fc.oneof(
    { weight: 5, arbitrary: path.chain((p) => valueFor(p).map((value): Mutation => ({ kind: 'set', path: p, value }))) },
    { weight: 2, arbitrary: path.map((p): Mutation => ({ kind: 'delete', path: p })) },
    { weight: 1, arbitrary: path.map((p): Mutation => ({ kind: 'duplicate', path: p })) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(path, fc.constantFrom('bogus', 'Host', 'timeout', '$schema2'))
        .map(([p, key]): Mutation => ({ kind: 'unknown', path: p, key })),
    },
    { weight: 1, arbitrary: fc.nat(lines - 1).map((line): Mutation => ({ kind: 'duplicate-line', line })) },
  );
}

/** The config text after `mutation` (applied to a fresh copy of the base). */
function apply(base: Record<string, unknown>, mutation: Mutation): string {
  if (mutation.kind === 'duplicate-line') {
    const lines = stringify(base).split('\n');
    lines.splice(mutation.line, 0, lines[mutation.line] ?? '');
    return lines.join('\n');
  }
  const root: Record<string, unknown> = structuredClone(base);
  const path = mutation.path;
  if (path.length === 0) {
    if (mutation.kind === 'set') return stringify(mutation.value);
    if (mutation.kind === 'delete') return '';
    if (mutation.kind === 'unknown') return stringify({ ...root, [mutation.key]: 1 });
    return stringify(root);
  }
  let parent = root as Record<string | number, unknown>;
  for (const part of path.slice(0, -1)) parent = parent[part] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  switch (mutation.kind) {
    case 'set':
      parent[last] = mutation.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
      break;
    case 'duplicate':
      if (Array.isArray(parent)) parent.push(structuredClone(parent[last]));
      else parent[`${String(last)}-copy`] = structuredClone(parent[last]);
      break;
    case 'unknown': {
      const target = parent[last];
      if (typeof target === 'object' && target !== null && !Array.isArray(target)) (target as Record<string, unknown>)[mutation.key] = 1;
      else parent[mutation.key] = 1;
      break;
    }
  }
  return stringify(root);
}

async function reloadCounters(admin: string): Promise<Record<'success' | 'failure', number>> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const read = (outcome: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`tokengate_config_reloads_total{outcome="${outcome}"}`));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };
  return { success: read('success'), failure: read('failure') };
}

describe('config reload property (live gateway process)', () => {
  let live: LiveGateway;

  before(async () => {
    live = await startLiveGateway();
  });

  after(async () => {
    await live.close();
  });

  it(`${RUNS} random mutations, each reloaded and then reverted: validate's verdict is the reload's outcome, and the gateway keeps serving`, async (t) => {
    const base = live.base();
    const baseText = stringify(base);
    const paths = pathsOf(base);
    const counts = { tried: 0, accepted: 0, refused: 0, cliChecked: 0 };
    const before = await reloadCounters(live.serve.admin);
    await live.assertBaseRoutesServe();

    await fc.assert(
      fc.asyncProperty(mutationArb(paths, baseText.split('\n').length), async (mutation) => {
        const text = apply(base, mutation);
        counts.tried++;
        // The verdict of the pipeline validate runs, in process, on the same text, file and environment
        // (built while the gateway reloads: the two are independent).
        const verdicting = buildConfigText(text, live.configFile, { env: live.env }).then(
          () => 'success' as const,
          (error: unknown) => {
            assert.ok(error instanceof ConfigError, `the pipeline threw ${String(error)}`);
            return 'failure' as const;
          },
        );
        const [{ outcome }, verdict] = await Promise.all([live.reload(text, { problems: false }), verdicting]);
        assert.equal(outcome, verdict, `reload ${outcome}, validate ${verdict}: ${JSON.stringify(mutation)}`);
        if (counts.tried % CLI_SAMPLE_EVERY === 0) {
          const run = await runCli(['validate', '--config', live.configFile], live.env);
          assert.equal(run.code, verdict === 'success' ? 0 : 1, `the CLI's validate disagrees: ${run.stderr}`);
          assert.doesNotMatch(run.stderr, /\n\s+at /);
          counts.cliChecked++;
        }
        await live.assertHealthy();
        if (outcome === 'failure') {
          counts.refused++;
          await live.assertBaseRoutesServe();
        } else counts.accepted++;
        assert.equal((await live.reload(baseText, { problems: false })).outcome, 'success', 'the base config reloads');
      }),
      { numRuns: RUNS, endOnFailure: true },
    );

    await live.assertHealthy();
    await live.assertBaseRoutesServe();
    const afterAll = await reloadCounters(live.serve.admin);
    // Every reload counted once, by outcome: the mutations' and the returns to the base.
    assert.equal(afterAll.failure - before.failure, counts.refused);
    assert.equal(afterAll.success - before.success, counts.accepted + counts.tried);
    const summary = `mutations tried ${counts.tried}, accepted ${counts.accepted}, refused ${counts.refused} (CLI validate spawned for ${counts.cliChecked})`;
    t.diagnostic(summary);
    assert.ok(counts.tried >= RUNS);
    assert.ok(counts.accepted > 0 && counts.refused > 0, summary);
  });
});
