/**
 * npm run build: bundles the console (console/src, Preact TSX + uPlot) into dist/console, so
 * the admin listener serves every asset itself and the page needs no CDN. The bundles also get a
 * gzip copy that the listener sends to browsers that accept it.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/console`;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { main: `${root}console/src/main.tsx` },
  bundle: true,
  // The same JSX transform console/tsconfig.json type-checks with: Preact's automatic runtime.
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  format: 'esm',
  target: 'es2022',
  outdir: out,
  legalComments: 'linked',
  logLevel: 'warning',
});
copyFileSync(`${root}console/index.html`, `${out}/index.html`);
// Compressed once here, so the admin listener sends a third of the bytes without compressing per request.
for (const name of ['main.js', 'main.css']) writeFileSync(`${out}/${name}.gz`, gzipSync(readFileSync(`${out}/${name}`), { level: 9 }));
