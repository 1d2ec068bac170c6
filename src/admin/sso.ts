/**
 * Single sign-on for the console (`admin.auth.oidc`): OpenID Connect's authorization code flow
 * with PKCE (RFC 7636, S256), `state` and `nonce`, with openid-client as the relying party.
 *
 * `GET /auth/login` keeps the state, nonce and code verifier in the session store (so the
 * callback may reach another replica of a fleet) under a random id in a short-lived cookie, and
 * redirects to the provider. `GET /auth/callback` takes that entry (once: a replayed callback
 * finds nothing), lets openid-client check the response and the ID token (signature against the
 * provider's JWKS, issuer, audience, expiry, nonce), maps the role from the configured claim and
 * starts a session that holds who signed in, never the provider's tokens.
 */
import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import * as oidcClient from 'openid-client';
import type { AdminOidc, ClientAuth, Config } from '../config/types.js';
import type { Logger } from '../observability/log.js';
import { roleFor, type AdminAuth, type AdminIdentity } from './admin-auth.js';
import { audit } from './audit.js';
import { AdminError } from '../errors/admin.js';
import { writeProblem } from '../errors/problem.js';
import { loginCookie, readLoginCookie } from './session-cookie.js';
import type { SessionStore } from './session-store.js';

/** Long enough to type a password and answer a second factor; a forgotten tab's sign-in expires. */
export const LOGIN_TTL_MS = 10 * 60_000;
/** Every call to the provider (discovery, JWKS, token, userinfo), in seconds as openid-client counts. */
export const PROVIDER_TIMEOUT_S = 10;
/** A session holds at most this many values of the roles claim, each at most MAX_CLAIM_CHARS long. */
const MAX_GROUPS = 200;
const MAX_CLAIM_CHARS = 256;

interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUrl: string;
  /** The oidc settings the sign-in began under: a reload in between makes it start again. */
  fingerprint: string;
}

export interface SsoOptions {
  auth: AdminAuth;
  config: () => Config;
  store: SessionStore;
  log: Logger;
}

export function createSsoRouter(options: SsoOptions): Router {
  const { auth, config, store, log } = options;
  const providers = new ProviderClients();
  const router = express.Router();

  const settings = (): AdminOidc => {
    const oidc = config().admin.auth?.oidc;
    if (oidc === undefined) throw new AdminError('NOT_FOUND', 'single sign-on is not configured (admin.auth.oidc)');
    return oidc;
  };

  router.get('/auth/login', async (req, res) => {
    const oidc = settings();
    const provider = await providers.get(oidc, log);
    const codeVerifier = oidcClient.randomPKCECodeVerifier();
    const pending: PendingLogin = {
      state: oidcClient.randomState(),
      nonce: oidcClient.randomNonce(),
      codeVerifier,
      redirectUrl: oidc.redirectUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}/auth/callback`,
      fingerprint: oidc.fingerprint,
    };
    const loginId = randomBytes(32).toString('base64url');
    await store.put('login', loginId, pending, LOGIN_TTL_MS);
    const target = oidcClient.buildAuthorizationUrl(provider, {
      redirect_uri: pending.redirectUrl,
      scope: oidc.scopes.join(' '),
      code_challenge: await oidcClient.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    // Lax, not Strict: the provider sends the browser back with a cross-site top-level GET.
    res.append('set-cookie', loginCookie(req, loginId, LOGIN_TTL_MS / 1000));
    res.setHeader('cache-control', 'no-store');
    res.redirect(302, target.href);
  });

  router.get('/auth/callback', async (req, res) => {
    const oidc = settings();
    res.setHeader('cache-control', 'no-store');
    // The sign-in in progress is used up whatever happens next.
    res.append('set-cookie', loginCookie(req, '', 0));
    const loginId = readLoginCookie(req);
    const pending = loginId === undefined || loginId === '' ? undefined : parsePending(await store.take('login', loginId));
    if (pending === undefined || pending.fingerprint !== oidc.fingerprint)
      throw refused(log, 'no sign-in in progress in this browser (expired, already used, or started elsewhere)');
    const provider = await providers.get(oidc, log);
    const currentUrl = new URL(pending.redirectUrl);
    currentUrl.search = new URL(req.originalUrl, 'http://callback.invalid').search;
    let tokens: Awaited<ReturnType<typeof oidcClient.authorizationCodeGrant>>;
    try {
      tokens = await oidcClient.authorizationCodeGrant(provider, currentUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      throw refused(log, `the provider's answer did not pass the checks: ${describe(error)}`);
    }
    const idClaims = tokens.claims();
    if (idClaims === undefined) throw refused(log, 'the provider sent no ID token');
    let claims: Record<string, unknown> = idClaims;
    // OIDC Core §5.4: with response_type=code, providers may keep profile claims for userinfo.
    if (idClaims[oidc.roles.claim] === undefined || (idClaims.email === undefined && idClaims.name === undefined)) {
      try {
        claims = { ...(await oidcClient.fetchUserInfo(provider, tokens.access_token, idClaims.sub)), ...idClaims };
      } catch (error) {
        throw refused(log, `the userinfo answer did not pass the checks: ${describe(error)}`);
      }
    }
    const groups = claimValues(claims[oidc.roles.claim]);
    const email = text(claims.email);
    const name = text(claims.name) ?? text(claims.preferred_username) ?? email ?? idClaims.sub;
    const role = roleFor(groups, oidc.roles);
    if (role === undefined) {
      audit(log, { action: 'sign_in_refused', who: { method: 'oidc', sub: idClaims.sub, email }, reason: 'no role' });
      throw new AdminError('ADMIN_FORBIDDEN', `${name} has neither the editor nor the viewer role (claim ${oidc.roles.claim})`);
    }
    const who: AdminIdentity = { method: 'oidc', role, sub: idClaims.sub, email, name };
    await auth.startSession(
      req,
      res,
      { method: 'oidc', issuer: oidc.issuer, clientId: oidc.clientId, sub: idClaims.sub, email, name, groups },
      who,
    );
    res.redirect(303, '/');
  });

  router.use('/auth', (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (!(error instanceof AdminError)) return next(error);
    // A person's browser lands here from the provider: a page, not JSON, tells them what happened.
    if (req.accepts(['application/problem+json', 'text/html']) === 'text/html') return sendProblemPage(res, error);
    writeProblem(res, error);
  });
  return router;
}

/** A refused sign-in: audited with its reason, answered 401 so the person starts again. */
function refused(log: Logger, reason: string): AdminError {
  audit(log, { action: 'sign_in_refused', method: 'oidc', reason });
  return new AdminError('ADMIN_AUTH_REQUIRED', `single sign-on failed: ${reason}; start again`);
}

/**
 * An error's code and message, bounded. openid-client wraps oauth4webapi's check failures, whose
 * own message names the check (`unexpected ID Token "nonce" claim value`) and never a value; the
 * values themselves are in the cause's cause, which is never read.
 */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return 'unknown error';
  const code = (error as { code?: unknown }).code;
  const oauthError = (error as { error?: unknown }).error;
  const label = typeof oauthError === 'string' ? oauthError : typeof code === 'string' ? code : error.name;
  const message = error.cause instanceof Error ? error.cause.message : error.message;
  return `${label}: ${message}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value.slice(0, MAX_CLAIM_CHARS) : undefined;

/** The roles claim as a list: a string is one value, an array its string items. */
function claimValues(value: unknown): string[] {
  const values = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  return values.filter((v): v is string => typeof v === 'string' && v.length <= MAX_CLAIM_CHARS).slice(0, MAX_GROUPS);
}

function parsePending(value: unknown): PendingLogin | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  const fields = ['state', 'nonce', 'codeVerifier', 'redirectUrl', 'fingerprint'] as const;
  return fields.every((field) => typeof p[field] === 'string') ? (p as unknown as PendingLogin) : undefined;
}

/**
 * The provider's openid-client Configuration per oidc settings, discovered once (a failed
 * discovery is tried again by the next sign-in). ID tokens are checked against the provider's
 * JWKS even though they come straight from its token endpoint (enableNonRepudiationChecks).
 */
class ProviderClients {
  #current: { fingerprint: string; client: Promise<oidcClient.Configuration> } | undefined;

  get(oidc: AdminOidc, log: Logger): Promise<oidcClient.Configuration> {
    if (this.#current?.fingerprint === oidc.fingerprint) return this.#current.client;
    const execute = [oidcClient.enableNonRepudiationChecks];
    // The loader accepts http: only for a loopback issuer (a provider on the same machine).
    if (new URL(oidc.issuer).protocol === 'http:') execute.push(oidcClient.allowInsecureRequests);
    const client = oidcClient
      .discovery(new URL(oidc.issuer), oidc.clientId, undefined, relyingPartyAuth(oidc.clientAuth), {
        timeout: PROVIDER_TIMEOUT_S,
        execute,
      })
      .catch((error: unknown) => {
        if (this.#current?.client === client) this.#current = undefined;
        log.warn({ event: 'sso_discovery_failed', issuer: oidc.issuer, reason: describe(error) }, 'single sign-on discovery failed');
        throw new AdminError('ADMIN_SSO_UNAVAILABLE', `the OpenID provider ${oidc.issuer} could not be reached; try again`);
      });
    this.#current = { fingerprint: oidc.fingerprint, client };
    return client;
  }
}

/**
 * The console authenticates to its provider with the same strategies (and checks) as a connection.
 * openid-client types ClientAuth as returning void, but oauth4webapi awaits it (its own
 * PrivateKeyJwt is async too): the assertion is signed before the request goes out.
 */
function relyingPartyAuth(strategy: ClientAuth | undefined): oidcClient.ClientAuth {
  if (strategy === undefined) throw new Error('admin.auth.oidc was not compiled');
  const apply = async (as: oidcClient.ServerMetadata, body: URLSearchParams, headers: Headers): Promise<void> => {
    const set: Record<string, string> = {};
    await strategy.apply(body, set, { tokenEndpoint: as.token_endpoint ?? '', issuer: as.issuer });
    for (const [name, value] of Object.entries(set)) headers.set(name, value);
  };
  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- awaited by oauth4webapi, see above
  return (as, _client, body, headers) => apply(as, body, headers);
}

const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** The refusal as a small page (same status and code) for a browser that arrived from the provider. */
function sendProblemPage(res: Response, error: AdminError): void {
  res
    .status(error.statusCode)
    .type('text/html')
    .setHeader('content-security-policy', "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in refused · tokengate</title></head>` +
        `<body><main><h1>Sign-in refused</h1><p>${escapeHtml(error.detail)}</p>` +
        `<p>Code: <code>${error.code}</code></p><p><a href="/">Back to the console</a></p></main></body></html>`,
    );
}
