/**
 * DNS rebinding: a page on a name the attacker controls, rebound to 127.0.0.1, reaches the admin
 * listener from the operator's own browser, and the browser sends that name as `Host`. Only names
 * the admin listener is meant to be reached by (`localhost`, `admin.allowedHosts`) and IP literals
 * (which a rebound name never is) are answered; anything else is refused before any handler runs.
 */
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { normaliseHost } from '../config/checks.js';
import { AdminError } from '../errors/admin.js';
import { writeProblem } from '../errors/problem.js';

/**
 * The host name of a `Host` header value without its port, lower case and without one trailing
 * dot; undefined when the value is not a host (and port) at all.
 */
export function hostName(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(header);
  if (bracketed !== null) return isIP(bracketed[1]!) === 6 ? `[${bracketed[1]!.toLowerCase()}]` : undefined;
  const plain = /^([A-Za-z0-9._-]+)(?::\d{1,5})?$/.exec(header);
  return plain === null ? undefined : plain[1]!.toLowerCase().replace(/\.$/, '');
}

/** Whether the admin listener answers a request that names `header` as its Host. */
export function hostAllowed(header: string | undefined, allowedHosts: readonly string[]): boolean {
  const name = hostName(header);
  if (name === undefined || name === '') return false;
  if (name.startsWith('[') || isIP(name) === 4) return true;
  return name === 'localhost' || allowedHosts.some((allowed) => normaliseHost(allowed) === name);
}

/** The first middleware of the admin app: a foreign Host gets 403 ADMIN_FORBIDDEN and nothing else. */
export function hostCheck(allowedHosts: () => readonly string[]) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (hostAllowed(req.headers.host, allowedHosts())) return next();
    writeProblem(
      res,
      new AdminError('ADMIN_FORBIDDEN', 'the admin listener does not answer to this Host; add the name to admin.allowedHosts'),
    );
  };
}
