/**
 * Serves the console page and its assets (built into dist/console by `npm run build`) from the
 * admin listener itself: no CDN, so it works on a machine without internet.
 */
import { existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';

/** From src/admin (tsx) and from dist/admin (built) alike, this is the repository's dist/console. */
const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

/** The bundles scripts/build-console.ts also writes gzipped. */
const PRECOMPRESSED = new Set(['main.js', 'main.css']);

/**
 * No inline script or style, nothing from elsewhere (scripts set styles through the CSSOM, which
 * style-src does not govern); the page cannot be framed, so no click-jacking of its buttons.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export function consoleAssets(): Router {
  const router = express.Router();
  router.use((req, res, next) => {
    if (req.path !== '/' && !req.path.startsWith('/assets/')) return next();
    res.setHeader('content-security-policy', CONSOLE_CSP);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-frame-options', 'DENY');
    if (!existsSync(CONSOLE_DIR)) {
      res.status(503).type('text/plain').send('The console is not built: run npm run build.\n');
      return;
    }
    next();
  });
  router.get('/', (_req, res) => {
    res.setHeader('cache-control', 'no-cache');
    res.sendFile('index.html', { root: CONSOLE_DIR });
  });
  router.get('/assets/:name', (req, res, next) => {
    const name = req.params.name;
    if (!PRECOMPRESSED.has(name) || req.acceptsEncodings('gzip') !== 'gzip' || !existsSync(join(CONSOLE_DIR, `${name}.gz`))) return next();
    res.setHeader('content-encoding', 'gzip');
    res.setHeader('vary', 'accept-encoding');
    res.type(extname(name));
    res.sendFile(`${name}.gz`, { root: CONSOLE_DIR });
  });
  router.use('/assets', express.static(CONSOLE_DIR, { index: false, fallthrough: false, cacheControl: true, maxAge: 0 }));
  return router;
}
