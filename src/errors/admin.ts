/** The admin API's refusals, each with a stable `code` the console and scripts branch on. */
import { TokengateError, type TokengateErrorOptions } from './base.js';
import type { AdminErrorCode } from './codes.js';

/** What some refusals add to the problem: the config's problems, the routes in the way, the file's version. */
export interface AdminProblemExtras {
  /** config/errors.ts's ConfigProblem: a key path and a message (and where in the file). */
  problems?: readonly { readonly path: string; readonly message: string }[];
  routes?: readonly string[];
  version?: string;
}

export class AdminError extends TokengateError<AdminErrorCode> {
  constructor(
    code: AdminErrorCode,
    detail: string,
    readonly extras: AdminProblemExtras = {},
    options: TokengateErrorOptions = {},
  ) {
    super(code, detail, options);
    this.name = 'AdminError';
  }

  override problemFields(): Record<string, unknown> {
    return { ...this.extras };
  }
}
