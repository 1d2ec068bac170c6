/**
 * With `admin.auth` set, the admin listener is for signed-in operators and keys: every path needs
 * a session or a key except the few that must stay open — probes and scrapes (`/metrics`,
 * `/healthz`, `/readyz`), signing in and out (`/session`, `/auth/*`), what authorization servers
 * fetch (`/jwks/*`), the console's page and assets (served before this guard), and the console's
 * bootstrap `/console/state`, which says nothing but "sign in" until one has. An allow-list: a path
 * added later is guarded unless it is named here. Without `admin.auth`, reads stay open and the
 * changing calls refuse themselves (admin-auth.ts).
 */
import type { NextFunction, Request, Response } from 'express';
import type { AdminAuth } from './admin-auth.js';
import { AdminError } from '../errors/admin.js';
import { writeProblem } from '../errors/problem.js';

const OPEN_PATHS = new Set(['/metrics', '/healthz', '/readyz', '/session', '/console/state']);
const OPEN_PREFIXES = ['/auth/', '/jwks/'];

/** Whether `path` (as the request names it, not normalised) is open without signing in. */
export function openPath(path: string): boolean {
  return OPEN_PATHS.has(path) || OPEN_PREFIXES.some((prefix) => path.startsWith(prefix));
}

export function readGuard(auth: AdminAuth) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!auth.configured || openPath(req.path) || auth.authenticated(req)) return next();
    writeProblem(res, new AdminError('ADMIN_AUTH_REQUIRED', 'sign in, or send Authorization: Bearer <admin key>'));
  };
}
