/** Calls to the admin API (same origin, session cookie sent by the browser). */

export interface Problem {
  code?: string;
  detail?: string;
  problems?: { path: string; message: string }[];
  routes?: string[];
}

export interface Answer<T> {
  ok: boolean;
  status: number;
  body: T & Problem;
}

export async function call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
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
  return { ok: response.ok, status: response.status, body: (data ?? {}) as T & Problem };
}

export interface ConsoleState {
  authRequired: boolean;
  signedIn: boolean;
  edit: boolean;
  readOnly: boolean;
  version: string;
  secrets: string[];
  /** How the sign-in page may sign in: an admin key field, a single sign-on button, or both. */
  signInWith?: { key: boolean; sso: boolean };
  /** Who is signed in, and their role (a viewer is shown no edit controls). */
  user?: { name: string; role: 'editor' | 'viewer'; method: 'key' | 'oidc' } | null;
}

export interface ConnectionSummary {
  connection: string;
  displayName: string;
  tokenEndpoint: string | null;
  issuer: string | null;
  clientAuth: string;
  tokenCached: boolean;
  expiresInSeconds: number | null;
  /** clientSecret connections: which secret the last token request used (clientSecret.previous). */
  secretInUse: 'current' | 'previous' | null;
  /** privateKeyJwt.managed: the JWKS path to give to the partner and the published keys. */
  managedKeys: { jwksPath: string; keys: Array<{ kid: string; state: 'next' | 'signing' | 'previous'; ageSeconds: number }> } | null;
}

export interface RouteSummary {
  name: string;
  match: { pathPrefix?: string; methods?: string[]; host?: string };
  upstream: string;
  auth: { type: string; connection: string | null; params: Record<string, unknown> };
}

/** What the server refused, by key path, for the field that path belongs to. */
export function problemsOf(answer: Answer<unknown>): { path: string; message: string }[] {
  if (answer.body.problems !== undefined) return answer.body.problems;
  return [{ path: '', message: answer.body.detail ?? `the gateway answered ${answer.status}` }];
}
