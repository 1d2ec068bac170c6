import process from 'node:process';

// Mutation testing of the core (test/README.md, "Mutation testing"). `npm run mutate` runs the whole
// core; `npm run mutate -- --mutate src/tokens/lifetime.ts` runs one module. The command runner runs
// only the test files that cover the modules being mutated (COVERING below), straight from src via
// tsx: no build, and no file that spawns dist/cli.js (a mutant in src would not reach it).
//
// Equivalent mutants are marked where they live, one `// Stryker disable next-line <mutator>: <reason>`
// each, so the reason sits beside the code it excuses.

/** Module (path prefix) → the test files that cover it. */
const COVERING = {
  'src/tokens/': [
    'test/tokens-lifetime.test.ts',
    'test/tokens-retry-circuit.test.ts',
    'test/token-pieces.test.ts',
    'test/tokens-flight-cache.test.ts',
  ],
  'src/routing/': [
    'test/perf-routing.test.ts',
    'test/core-routing.test.ts',
    'test/routing-mutants.test.ts',
    'test/core-proxy-pieces.test.ts',
  ],
  'src/proxy/headers.ts': ['test/perf-headers.test.ts', 'test/core-headers.test.ts', 'test/headers-mutants.test.ts'],
  // Not core-config.test.ts: half of it spawns dist/cli.js, which the sandbox has no copy of (dist is ignored).
  'src/config/': ['test/ops-substitution.test.ts', 'test/core-config-messages.test.ts', 'test/config-substitution-rules.test.ts'],
  'src/config/semantic.ts': ['test/config-semantic-checks.test.ts'],
};

/** The core: what `npm run mutate` mutates when no --mutate is given. */
const CORE = [
  'src/routing/path.ts',
  'src/routing/router.ts',
  'src/routing/target.ts',
  'src/proxy/headers.ts',
  'src/tokens/lifetime.ts',
  'src/tokens/retry.ts',
  'src/tokens/circuit.ts',
  'src/tokens/single-flight.ts',
  'src/tokens/cache.ts',
  'src/config/substitute.ts',
  'src/config/semantic.ts',
];

function mutateArgument() {
  const index = process.argv.indexOf('--mutate');
  if (index >= 0 && process.argv[index + 1] !== undefined) return process.argv[index + 1].split(',');
  const inline = process.argv.find((arg) => arg.startsWith('--mutate='));
  return inline === undefined ? CORE : inline.slice('--mutate='.length).split(',');
}

function coveringTests(modules) {
  // MUTATE_TESTS='test/a.test.ts test/b.test.ts' overrides the map (to measure one file's worth).
  if (process.env.MUTATE_TESTS) return process.env.MUTATE_TESTS.split(/\s+/).filter(Boolean);
  const files = new Set();
  for (const module of modules) {
    for (const [prefix, tests] of Object.entries(COVERING)) {
      if (module.startsWith(prefix)) tests.forEach((file) => files.add(file));
    }
  }
  if (files.size === 0) throw new Error(`stryker.config.mjs: no covering tests listed for ${modules.join(', ')}`);
  return [...files];
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'command',
  commandRunner: { command: `node --import tsx --test --test-concurrency=1 ${coveringTests(mutateArgument()).join(' ')}` },
  mutate: CORE,
  // The machine is shared: one mutant at a time (raise with --concurrency on a free machine).
  concurrency: 1,
  timeoutMS: 20_000,
  coverageAnalysis: 'off',
  ignorePatterns: ['dist', 'reports', 'test/artifacts', 'bench/results', '.tmp'],
  reporters: ['html', 'json', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.tmp/stryker',
  cleanTempDir: true,
};
