/**
 * A real OpenID provider for people signing in to the console: oidc-provider with the
 * authorization code flow, a small login page of its own (a **Username** field and a **Sign in**
 * button) for the test users below, and consent granted for the console as a first-party client.
 *
 * The provider's port is known before the gateway starts (its config names the issuer), and the
 * console's client is registered once the gateway's admin address (its redirect URI) is known:
 * `listenPeopleProvider()`, then `start(clients)`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';

export interface Person {
  sub: string;
  name: string;
  email: string;
  /** The roles claim; absent for a user in no group. */
  groups?: string[] | string;
}

export interface PeopleClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  token_endpoint_auth_method?: string;
  jwks?: { keys: Record<string, unknown>[] };
  [key: string]: unknown;
}

export interface PeopleProvider {
  issuer: string;
  /** Registers the clients and starts answering (before this, every request is 503). */
  start(clients: PeopleClient[]): void;
  /** Userinfo requests received: tells whether the console read claims from there. */
  userinfoRequests: number;
  close(): Promise<void>;
}

export const PEOPLE: Record<string, Person> = {
  'ed.itor': { sub: 'ed.itor', name: 'Edith Editor', email: 'edith@example.com', groups: ['platform-admins', 'everyone'] },
  'vi.ewer': { sub: 'vi.ewer', name: 'Victor Viewer', email: 'victor@example.com', groups: 'platform-team' },
  'no.role': { sub: 'no.role', name: 'Nora Nobody', email: 'nora@example.com', groups: ['sales'] },
};

const page = (
  uid: string,
  error = '',
) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test provider sign-in</title></head>
<body><main><h1>Test provider</h1>${error === '' ? '' : `<p role="alert">${error}</p>`}
<form method="post" action="/interaction/${uid}/login">
<label for="login">Username</label> <input id="login" name="login" autocomplete="username">
<button type="submit">Sign in</button></form></main></body></html>`;

/**
 * `claimsInIdToken: false` keeps every claim but `sub` for userinfo (oidc-provider's default for
 * the code flow, OIDC Core §5.4); true puts them in the ID token too. `host` 127.0.0.2 makes the
 * provider another site than a gateway on 127.0.0.1, as a real provider is (cookie rules differ).
 */
export async function listenPeopleProvider(options: { claimsInIdToken?: boolean; host?: string } = {}): Promise<PeopleProvider> {
  const server = http.createServer();
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((done) => server.listen(0, host, done));
  const issuer = `http://${host}:${(server.address() as AddressInfo).port}`;
  let handle: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
  server.on('request', (req, res) => {
    if (handle === undefined) res.writeHead(503).end();
    else handle(req, res);
  });
  const result: PeopleProvider = {
    issuer,
    userinfoRequests: 0,
    start(clients) {
      const provider = new Provider(issuer, {
        clients: clients.map((c) => ({ grant_types: ['authorization_code'], response_types: ['code'], ...c })),
        scopes: ['openid', 'profile', 'email', 'groups'],
        claims: { openid: ['sub'], profile: ['name'], email: ['email'], groups: ['groups'] },
        conformIdTokenClaims: options.claimsInIdToken !== true,
        features: { devInteractions: { enabled: false } },
        pkce: { required: () => true },
        ttl: { Interaction: 600, Grant: 600, Session: 600, AccessToken: 300, IdToken: 300, AuthorizationCode: 60 },
        clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'],
        findAccount: (_ctx: unknown, id: string) => {
          const person = PEOPLE[id];
          return person === undefined
            ? undefined
            : { accountId: id, claims: () => ({ sub: person.sub, name: person.name, email: person.email, groups: person.groups }) };
        },
        // The console is a first-party client: consent to what it asks is given with the login.
        loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
          const { client, session, params, provider: op } = ctx.oidc;
          if (client === undefined || session === undefined) return undefined;
          const grantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
          if (grantId !== undefined) return op.Grant.find(grantId);
          const grant = new op.Grant({ clientId: client.clientId, accountId: session.accountId });
          grant.addOIDCScope(String(params?.scope));
          await grant.save();
          return grant;
        },
        interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      } as never);
      const callback = provider.callback();
      handle = (req, res) => {
        const url = req.url ?? '/';
        if (url === '/me' || url.startsWith('/me?')) result.userinfoRequests++;
        const interaction = /^\/interaction\/([^/?]+)(\/login)?/.exec(url);
        if (interaction === null) return void callback(req, res);
        void (async () => {
          const uid = interaction[1] ?? '';
          await provider.interactionDetails(req, res);
          if (interaction[2] === undefined) {
            res.writeHead(200, { 'content-type': 'text/html' }).end(page(uid));
            return;
          }
          let body = '';
          for await (const chunk of req) body += String(chunk);
          const login = new URLSearchParams(body).get('login') ?? '';
          if (PEOPLE[login] === undefined) {
            res.writeHead(200, { 'content-type': 'text/html' }).end(page(uid, 'Unknown user.'));
            return;
          }
          await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
        })().catch((error: unknown) => {
          if (!res.headersSent) res.writeHead(500).end(String(error));
        });
      };
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
  return result;
}

/** A cookie jar per origin, enough to walk redirects between the gateway and the provider. */
export class CookieJar {
  readonly #cookies = new Map<string, Map<string, string>>();

  header(url: string): string {
    return [...(this.#cookies.get(new URL(url).host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  take(url: string, response: Response): void {
    const host = new URL(url).host;
    const jar = this.#cookies.get(host) ?? new Map<string, string>();
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1);
      if (value === '' || /max-age=0\b/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    this.#cookies.set(host, jar);
  }

  get(url: string, name: string): string | undefined {
    return this.#cookies.get(new URL(url).host)?.get(name);
  }

  set(url: string, name: string, value: string): void {
    const host = new URL(url).host;
    const jar = this.#cookies.get(host) ?? new Map<string, string>();
    jar.set(name, value);
    this.#cookies.set(host, jar);
  }
}

/** One request with the jar's cookies, redirects not followed; the answer's cookies go into the jar. */
export async function step(jar: CookieJar, url: string, init: RequestInit = {}): Promise<Response> {
  const cookie = jar.header(url);
  const response = await fetch(url, {
    ...init,
    redirect: 'manual',
    headers: { ...(cookie === '' ? {} : { cookie }), ...(init.headers as Record<string, string> | undefined) },
  });
  jar.take(url, response);
  return response;
}

/** Follows redirects through the jar until `stop(url)` says this is where to stop; returns that URL. */
export async function follow(jar: CookieJar, url: string, stop: (url: string) => boolean): Promise<string> {
  let at = url;
  for (let hops = 0; hops < 10 && !stop(at); hops++) {
    const response = await step(jar, at);
    await response.body?.cancel();
    const location = response.headers.get('location');
    if (location === null) throw new Error(`${at} answered ${response.status} without a redirect`);
    at = new URL(location, at).href;
  }
  if (!stop(at)) throw new Error(`too many redirects from ${url}`);
  return at;
}

/**
 * Signs `login` in at the provider the way a browser would: from the provider's authorization URL,
 * through its login page, to the redirect back to the console. Returns the callback URL (with
 * `code`, `state` and `iss`), not yet visited.
 */
export async function signInAtProvider(
  jar: CookieJar,
  authorizationUrl: string,
  login: string,
  callbackPath = '/auth/callback',
): Promise<string> {
  const isCallback = (url: string) => new URL(url).pathname === callbackPath;
  const interaction = await follow(jar, authorizationUrl, (url) => new URL(url).pathname.startsWith('/interaction/') || isCallback(url));
  if (isCallback(interaction)) return interaction;
  const form = await step(jar, interaction);
  await form.body?.cancel();
  const posted = await step(jar, `${interaction}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login }).toString(),
  });
  await posted.body?.cancel();
  const location = posted.headers.get('location');
  if (location === null) throw new Error(`the provider's login answered ${posted.status}`);
  return follow(jar, new URL(location, interaction).href, isCallback);
}
