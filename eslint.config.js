// ESLint flat config: typescript-eslint's type-checked rules over every TypeScript file, import cycles,
// and eslint-config-prettier last so formatting is left to Prettier (`npm run lint` runs both).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, bottom first (docs/decisions/0007-layers.md): a folder may import its own
 * and those below it, never one above. `import type` counts too: a type is a dependency.
 */
const LAYERS = [
  ['src/errors'],
  ['src/routing'],
  ['src/config'],
  ['src/tokens'],
  ['src/tracing'],
  ['src/observability'],
  ['src/cache'],
  ['src/proxy'],
  ['src/runtime'],
  ['src/admin'],
  ['src/gateway', 'src/cli.ts'],
];
const layerZones = LAYERS.flatMap((layer, level) =>
  layer.map((target) => ({
    target: `./${target}`,
    from: LAYERS.slice(level + 1)
      .flat()
      .map((above) => `./${above}`),
    message: `${target} is on layer ${level} and may not import from a layer above it (docs/decisions/0007-layers.md).`,
  })),
).filter((zone) => zone.from.length > 0);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', 'test/artifacts/', '.tmp/', 'deploy/', 'reports/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.lint.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.lint.json' })] },
    rules: {
      // Value-import cycles. import-x skips `import type` edges by design (no option turns that off), so
      // `npm run lint` also runs dpdm over src/, which follows type imports too.
      'import-x/no-cycle': ['error', { maxDepth: '∞' }],
      // The layers of src/ (LAYERS above).
      'import-x/no-restricted-paths': ['error', { zones: layerZones }],
      // node:test's describe/it return promises the runner itself awaits; every other promise must be handled.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
      // Leading underscore marks a parameter a signature needs but the body does not (Express's 4-arity error handler).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // The regexes that hit this match control characters on purpose: they reject CR/LF/NUL in header and log text.
      'no-control-regex': 'off',
      // An async method without await still turns a throw into a rejection, the contract its interface promises.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests walk parsed JSON bodies and log lines field by field; the assertion on each field is the type check.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-unsafe-member-access': 'off' },
  },
  {
    // The console's browser code has its own TypeScript project (DOM types, bundler resolution, Preact JSX).
    files: ['console/**/*.ts', 'console/**/*.tsx'],
    languageOptions: { parserOptions: { project: './console/tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      // From the server the console takes types only (src/admin/api-types.ts): none of its code may reach the bundle.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/src/**'], allowTypeImports: true, message: 'The console shares only types with the server: use import type.' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  prettier,
  {
    // After eslint-config-prettier (which turns max-len off): src/ keeps the 140-column width for code too,
    // including strings and comments that Prettier will not wrap.
    files: ['src/**/*.ts'],
    rules: { 'max-len': ['error', { code: 140, tabWidth: 2 }] },
  },
);
