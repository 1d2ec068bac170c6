/**
 * npm run build: bundles the console (console/src, Preact + htm + uPlot) into dist/console, so
 * the admin listener serves every asset itself and the page needs no CDN.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/console`;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { main: `${root}console/src/main.ts` },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  outdir: out,
  legalComments: 'linked',
  logLevel: 'warning',
});
copyFileSync(`${root}console/index.html`, `${out}/index.html`);
