/**
 * Calls to the admin API (same origin, session cookie sent by the browser). The answers' types are
 * the server's own (src/admin/api-types.ts): imported as types only, so none of it is bundled.
 */
import type { ConsoleStateAnswer, ProblemAnswer, SignInNeeded } from '../../src/admin/api-types.js';

export type * from '../../src/admin/api-types.js';

/** What an answer holds: `T` when the call succeeded, `F` (a problem, unless the path says otherwise) when not. */
export type Answer<T, F = ProblemAnswer> = { ok: true; status: number; body: T } | { ok: false; status: number; body: F };

export async function call<T = unknown, F = ProblemAnswer>(method: string, path: string, body?: unknown): Promise<Answer<T, F>> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data: unknown = {};
  try {
    data = await response.json();
  } catch {
    // An empty answer (204) or one that is not JSON.
  }
  // The one unchecked step: the JSON is taken to be what the server's types say it sends.
  return response.ok
    ? { ok: true, status: response.status, body: (data ?? {}) as T }
    : { ok: false, status: response.status, body: (data ?? {}) as F };
}

/** Whether the console must show the sign-in page (admin.auth is set and no one is signed in). */
export const mustSignIn = (state: ConsoleStateAnswer): state is SignInNeeded => state.authRequired && !state.signedIn;

/** What the server refused, by key path, for the field that path belongs to. */
export function problemsOf(answer: { status: number; body: ProblemAnswer }): readonly { path: string; message: string }[] {
  if (answer.body.problems !== undefined) return answer.body.problems;
  return [{ path: '', message: answer.body.detail ?? `the gateway answered ${answer.status}` }];
}
