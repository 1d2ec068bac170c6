/**
 * The admin API's JSON, as one set of types for both ends: the handlers check each answer against
 * them (`satisfies`) and the console (console/src) reads answers through them. Types only, and no
 * imports: the console compiles this file in its own browser project and bundles none of it.
 */

/** How the sign-in page may sign in: an admin key field, a single sign-on button, or both. */
export interface SignInWith {
  key: boolean;
  sso: boolean;
}

/** Who is signed in (never a key or session id); a viewer is shown no edit controls. */
export interface ConsoleUser {
  name: string;
  role: 'editor' | 'viewer';
  method: 'key' | 'oidc';
}

/** GET /console/state before sign-in: that one is needed and how, nothing else. */
export interface SignInNeeded {
  authRequired: true;
  signedIn: false;
  signInWith: SignInWith;
}

/** GET /console/state once signed in, or when admin.auth is not set. */
export interface ConsoleState {
  authRequired: boolean;
  signedIn: boolean;
  signInWith: SignInWith;
  user: ConsoleUser | null;
  edit: boolean;
  readOnly: boolean;
  /** The file's version: a change names the one it was based on. */
  version: string;
  /** Names only: their values never leave the process. */
  secrets: string[];
}

export type ConsoleStateAnswer = SignInNeeded | ConsoleState;

export interface ManagedKeyView {
  kid: string;
  state: 'next' | 'signing' | 'previous';
  createdAt: string;
  ageSeconds: number;
}

/** One entry of GET /connections: the running config's connection and its token status, never a token. */
export interface ConnectionSummary {
  connection: string;
  displayName: string;
  tokenEndpoint: string | null;
  issuer: string | null;
  clientAuth: string;
  dpop: { algorithm: string; thumbprint: string } | null;
  /** clientSecret connections: which secret the last token request used (clientSecret.previous). */
  secretInUse: 'current' | 'previous' | null;
  /** privateKeyJwt.managed: the JWKS path to give to the partner and the published keys. */
  managedKeys: { jwksPath: string; keys: ManagedKeyView[] } | null;
  tokenCached: boolean;
  expiresInSeconds: number | null;
}

export interface ConnectionList {
  connections: ConnectionSummary[];
}

/** GET /connections/KEY: the block as the file has it (secret names, pasted secrets as ***). */
export interface ConnectionAnswer {
  key: string;
  connection: Record<string, unknown>;
  version: string;
}

/** One entry of GET /routes: the route as the file has it (a file being edited by hand may say otherwise). */
export interface RouteSummary {
  name: string;
  match: { pathPrefix?: string; methods?: string[]; host?: string };
  upstream: string;
  auth: { type: string; connection: string | null; params: Record<string, unknown> };
}

export interface RoutesAnswer {
  version: string;
  routes: RouteSummary[];
}

/** PUT /routes/NAME/auth: what the console sends (besides the file's `version`). */
export interface RouteAuthChange {
  type: string;
  connection?: string;
  params?: Record<string, string>;
  version: string;
}

/** An accepted change: the file's new version. */
export type EditAnswer = { ok: true; version: string } & ({ key: string } | { route: string });

/** A refusal (RFC 9457 problem+json) with the stable `code` the console branches on. */
export interface ProblemAnswer {
  type?: string;
  title?: string;
  status?: number;
  code?: string;
  detail?: string;
  /** CONFIG_INVALID: what was refused, by key path. */
  problems?: readonly { path: string; message: string }[];
  /** CONNECTION_IN_USE: the routes that use the connection. */
  routes?: readonly string[];
  /** CONFIG_CHANGED: the file's current version. */
  version?: string;
}

/** POST /connections/KEY/test, 200: a token was issued (shown masked), as the `token` command prints it. */
export interface TokenTestSuccess {
  ok: true;
  connection: string;
  tokenType: string;
  scope: string | null;
  expiresIn: number | null;
  expiresAt: string | null;
  accessToken: string;
  tookMs: number;
}

/** POST /connections/KEY/test, 502: the token request failed, with the gateway's reason. */
export interface TokenTestFailure {
  ok: false;
  connection: string;
  code: string;
  reason?: string;
  oauthError?: string;
  detail: string;
  httpStatus?: number;
  tookMs: number;
}

export type TokenTestAnswer = TokenTestSuccess | TokenTestFailure;

export interface UsageConnection {
  connection: string;
  displayName: string;
  tokenRequests: number;
  successes: number;
  failures: number;
  failuresByReason: Record<string, number>;
  cacheHits: number;
  cacheMisses: number;
  cacheHitRatio: number | null;
  tokenExpiresInSeconds: number | null;
  tokenExpiresAt: string | null;
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
}

export interface UsageFailure {
  time: string;
  connection: string;
  route: string | null;
  code: string;
  reason: string;
  oauthError: string | null;
  error_description: string | null;
  detail: string;
  httpStatus: number | null;
  requestId: string | null;
}

/** GET /usage. */
export interface UsageAnswer {
  connections: UsageConnection[];
  recentFailures: UsageFailure[];
}

/** GET /usage/history: per-minute counts of the last hour, oldest first. */
export interface UsageHistoryAnswer {
  minutes: number[];
  connections: Record<string, { requests: number[]; failures: number[] }>;
}
