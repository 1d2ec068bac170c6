/**
 * oidc-provider as an authorization server of connections without long-lived secrets: what it
 * accepted (each client assertion's `kid` and `jti`), what it refused, and two peer settings the
 * tests need, each the way other servers behave.
 */
import { decodeProtectedHeader } from 'jose';
import type { OidcServer } from './oidc.js';

export interface Grants {
  /** The `kid` of every client assertion behind a token the server issued, in order. */
  readonly kids: string[];
  /** Token requests the server refused, with its OAuth error. */
  readonly errors: string[];
}

interface OidcContext {
  oidc: { params?: Record<string, unknown> };
}

/** Records every token request's outcome (oidc-provider's grant.success and grant.error events). */
export function recordGrants(oidc: OidcServer): Grants {
  const grants: Grants = { kids: [], errors: [] };
  oidc.provider.on('grant.success', (ctx: OidcContext) => {
    const assertion = ctx.oidc.params?.client_assertion;
    if (typeof assertion === 'string') grants.kids.push(String(decodeProtectedHeader(assertion).kid));
  });
  oidc.provider.on('grant.error', (_ctx: unknown, error: { error?: string }) => grants.errors.push(error.error ?? 'unknown'));
  return grants;
}

interface ClientKeyStore {
  freshUntil?: number;
  refresh(): Promise<void>;
}

/**
 * oidc-provider keeps a client's `jwks_uri` keys for at least 60 s whatever `Cache-Control` says
 * (lib/models/client.js: freshUntil = max(now + 60, max-age)), and fetches again only for an
 * unknown `kid` once they are stale. Keycloak (a 10 s floor) and Okta honour the server's cache
 * time; so does this client after the call, which lets a test rotate every 10 s instead of
 * waiting minutes.
 */
export async function honourJwksMaxAge(oidc: OidcServer, clientId: string, maxAgeSeconds: number): Promise<void> {
  const client = (await oidc.provider.Client.find(clientId)) as unknown as { asymmetricKeyStore: ClientKeyStore } | undefined;
  if (client === undefined) throw new Error(`no client ${clientId}`);
  const store = client.asymmetricKeyStore;
  const refresh = store.refresh.bind(store);
  store.refresh = async () => {
    const stale = store.freshUntil === undefined || store.freshUntil <= Date.now() / 1000;
    await refresh();
    if (stale) store.freshUntil = Math.floor(Date.now() / 1000) + maxAgeSeconds;
  };
}

/**
 * Entra ID, Google and AWS accept one workload identity token for as long as it is valid (the
 * kubelet replaces it well before it expires); oidc-provider refuses a client assertion's `jti`
 * the second time. This server accepts it again, as they do, and records every `jti` it saw.
 */
export function acceptReusedAssertions(oidc: OidcServer): string[] {
  const seen: string[] = [];
  const detection = oidc.provider.ReplayDetection as unknown as { unique: (iss: string, jti: string) => Promise<boolean> };
  detection.unique = (_iss, jti) => {
    seen.push(jti);
    return Promise.resolve(true);
  };
  return seen;
}
