/**
 * The value schemas every part of the config schema is built from: names, secret references,
 * bounded time-outs, URLs, durations, secrets and token-request parameters, TLS verification.
 */
import { z } from 'zod';
import { DURATION_PATTERN } from './duration.js';

export const name = z.string().min(1);
export const secretRef = name.describe('name of an entry under `secrets`');
/**
 * The longest delay Node's timers can hold (2^31−1 ms, about 24.8 days): a larger one fires after
 * 1 ms instead, so every time-out in the config is bounded by it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
export const positiveMs = z
  .number()
  .int()
  .positive()
  .max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} ms (2^31−1, the longest delay a Node.js timer can hold)`)
  .describe('milliseconds, 1 to 2147483647 (2^31−1)');
/** Seconds that become a timer's delay (token lifetimes and skews), bounded as positiveMs is. */
export const MAX_TIMER_S = Math.floor(MAX_TIMER_MS / 1000);
export const timerSeconds = z.number().max(MAX_TIMER_S, `must be at most ${MAX_TIMER_S} s (a Node.js timer holds at most 2^31−1 ms)`);

export const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}, 'must be an absolute http: or https: URL');

export const secretSchema = z.union([
  z.strictObject({
    env: name.describe("environment variable holding the secret; a process's environment is fixed: rotate it with a (rolling) restart"),
  }),
  z.strictObject({
    file: name.describe(
      'file holding the secret, relative to the config file; a regular file (not a FIFO, device or socket), read within 5 s; ' +
        'followed while serving: a change (a Kubernetes Secret update, an in-place write) is applied without a restart',
    ),
  }),
  z.strictObject({ value: z.string().describe('the secret inline (logged as a warning; not for production)') }),
]);

const paramValue = z.union([z.string(), z.number(), z.boolean()]);
/** Form fields tokengate sets itself: a param must not change the grant or the client's credentials. */
const RESERVED_PARAMS = ['grant_type', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];
export const paramsSchema = z
  .record(z.string().min(1), paramValue)
  .superRefine((params, ctx) => {
    for (const name of RESERVED_PARAMS) {
      if (name in params) ctx.addIssue({ code: 'custom', path: [name], message: `${name} is set by tokengate and cannot be a param` });
    }
  })
  .describe('extra token-request parameters, sent as form fields');

/** A duration string: a whole number and s, m or h (src/config/duration.ts). */
export const duration = z.string().regex(DURATION_PATTERN, 'must be a number and a unit: s, m or h (20s, 15m, 720h)');

/** How tokengate verifies the server of an outbound TLS connection (token endpoint or upstream). */
export const tlsVerifySchema = z.strictObject({
  ca: secretRef.optional().describe('secret holding a PEM CA bundle; replaces the system roots for this connection'),
  insecureSkipVerify: z.boolean().default(false).describe('do not verify the server certificate (logged as a warning)'),
});
