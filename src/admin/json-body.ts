/**
 * Admin request bodies: JSON, at most 1 MiB, at most 32 levels deep, and without the keys that
 * name a prototype. A connection or a route's auth is a few levels and a few hundred bytes; the
 * limits are far above any form and far below what could hurt: every later walk over a body
 * (merge, checks, the YAML document) recurses, and 20,000 levels overflow the stack.
 */
import express, { type Request } from 'express';
import { formatPath } from '../config/errors.js';
import { PROTOTYPE_KEY_MESSAGE, prototypeKeyPaths } from '../config/prototype-keys.js';
import { AdminError } from '../errors/admin.js';

/** The shape of express.json(), so that routes keep their typed path parameters. */
type JsonParser = ReturnType<typeof express.json>;

export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_BODY_DEPTH = 32;

/** Whether `value` nests deeper than `max` (arrays and objects count; a scalar is depth 0). */
export function deeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (max === 0) return true;
  return Object.values(value).some((item) => deeperThan(item, max - 1));
}

/** The admin API's JSON body parser: the checks above, each refused with its own status and code. */
export function adminJson(): JsonParser {
  const parse = express.json({ limit: MAX_BODY_BYTES, strict: false });
  return (req, res, next) => {
    parse(req, res, (error?: unknown) => {
      if (error !== undefined) return next(error);
      const body: unknown = (req as Request).body;
      if (deeperThan(body, MAX_BODY_DEPTH))
        return next(new AdminError('BAD_REQUEST', `the body nests deeper than ${MAX_BODY_DEPTH} levels`));
      const paths = prototypeKeyPaths(body);
      if (paths.length > 0)
        return next(
          new AdminError('CONFIG_INVALID', 'the change was not applied', {
            problems: paths.map((path) => ({ path: formatPath(path), message: PROTOTYPE_KEY_MESSAGE })),
          }),
        );
      next();
    });
  };
}
