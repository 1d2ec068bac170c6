/**
 * The admin API's refusals as RFC 9457 problem+json, each with a stable `code` the console and
 * scripts branch on.
 */
import type { Response } from 'express';
import type { ConfigProblem } from '../config/errors.js';

export type AdminErrorCode =
  | 'ADMIN_AUTH_REQUIRED'
  | 'ADMIN_FORBIDDEN'
  | 'CONFIG_INVALID'
  | 'CONFIG_READ_ONLY'
  | 'CONFIG_CHANGED'
  | 'CONNECTION_IN_USE'
  | 'NOT_FOUND'
  | 'BAD_REQUEST'
  | 'BODY_TOO_LARGE'
  | 'ADMIN_SSO_UNAVAILABLE';

const STATUS: Record<AdminErrorCode, number> = {
  ADMIN_AUTH_REQUIRED: 401,
  ADMIN_FORBIDDEN: 403,
  CONFIG_INVALID: 422,
  CONFIG_READ_ONLY: 409,
  CONFIG_CHANGED: 409,
  CONNECTION_IN_USE: 409,
  NOT_FOUND: 404,
  BAD_REQUEST: 400,
  BODY_TOO_LARGE: 413,
  ADMIN_SSO_UNAVAILABLE: 503,
};

const TITLE: Record<AdminErrorCode, string> = {
  ADMIN_AUTH_REQUIRED: 'Sign in with an admin key first',
  ADMIN_FORBIDDEN: 'This change is not allowed',
  CONFIG_INVALID: 'The change would make the config invalid',
  CONFIG_READ_ONLY: 'The config file is read-only',
  CONFIG_CHANGED: 'The config file changed since it was read',
  CONNECTION_IN_USE: 'Routes still use this connection',
  NOT_FOUND: 'Not found',
  BAD_REQUEST: 'Bad request',
  BODY_TOO_LARGE: 'The body is too large',
  ADMIN_SSO_UNAVAILABLE: 'The single sign-on provider cannot be reached',
};

export interface AdminProblemExtras {
  problems?: readonly ConfigProblem[];
  routes?: readonly string[];
  version?: string;
}

export class AdminError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: AdminErrorCode,
    readonly detail: string,
    readonly extras: AdminProblemExtras = {},
  ) {
    super(detail);
    this.name = 'AdminError';
    this.statusCode = STATUS[code];
  }
}

export function sendProblem(res: Response, error: AdminError): void {
  res
    .status(error.statusCode)
    .type('application/problem+json')
    .setHeader('cache-control', 'no-store')
    .send(
      JSON.stringify({
        type: `https://tokengate.dev/problems/${error.code.toLowerCase().replaceAll('_', '-')}`,
        title: TITLE[error.code],
        status: error.statusCode,
        detail: error.detail,
        code: error.code,
        ...error.extras,
      }),
    );
}
