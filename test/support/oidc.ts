/**
 * A real authorization server for the tests: oidc-provider (a certified OpenID Connect server)
 * with the client-credentials grant and introspection, on a loopback port.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import Provider from 'oidc-provider';

export interface OidcClient {
  client_id: string;
  client_secret?: string;
  token_endpoint_auth_method?: string;
  token_endpoint_auth_signing_alg?: string;
  jwks?: { keys: Record<string, unknown>[] };
  scope?: string;
  [key: string]: unknown;
}

export interface OidcServer {
  issuer: string;
  tokenUrl: string;
  /** Token requests the server received (any outcome). */
  tokenRequests: number;
  /** GETs of a discovery document (/.well-known/...). */
  discoveryRequests: number;
  provider: Provider;
  /** RFC 7662 introspection of a token, as the resource server would do it (plain HTTP servers only). */
  introspect(token: string): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/**
 * Every JWS algorithm tokengate signs client assertions with; oidc-provider enables only
 * HS256 RS256 PS256 ES256 Ed25519 EdDSA by default (enabledJWA.clientAuthSigningAlgValues).
 */
export const CLIENT_AUTH_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

/** Every JWS algorithm tokengate signs DPoP proofs with (connections.KEY.dpop.algorithm). */
export const DPOP_PROOF_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'];

/**
 * Serve HTTPS with this certificate and take mutual-TLS client authentication (RFC 8705):
 * tls_client_auth for certificates `clientCa` signed, self_signed_tls_client_auth for any other.
 */
export interface OidcTls {
  cert: string;
  key: string;
  clientCa: string;
}

/** oidc-provider's mTLS feature reading the client certificate from the TLS socket. */
function mtlsFeature() {
  const peer = (ctx: { socket: TLSSocket }) => ctx.socket.getPeerX509Certificate();
  return {
    enabled: true,
    tlsClientAuth: true,
    selfSignedTlsClientAuth: true,
    // RFC 8705 §3, for clients registered with tls_client_certificate_bound_access_tokens.
    certificateBoundAccessTokens: true,
    getCertificate: peer,
    certificateAuthorized: (ctx: { socket: TLSSocket }) => ctx.socket.authorized,
    certificateSubjectMatches: (ctx: { socket: TLSSocket }, property: string, expected: string) =>
      property === 'tls_client_auth_subject_dn' && peer(ctx)?.subject === expected,
  };
}

export const INTROSPECTOR = { client_id: 'resource-server', client_secret: 'resource-server-secret-0123456789abcdef' };

export async function startOidcProvider(
  clients: OidcClient[],
  options: {
    ttlSeconds?: number;
    features?: Record<string, unknown>;
    tls?: OidcTls;
    discovery?: Record<string, unknown>;
    /** Fetch a client's jwks_uri on loopback (oidc-provider refuses special-use addresses by default). */
    loopbackJwksUri?: boolean;
  } = {},
): Promise<OidcServer> {
  const { tls } = options;
  // requestCert without rejectUnauthorized: the provider, not the handshake, judges the certificate.
  const server =
    tls === undefined
      ? http.createServer()
      : https.createServer({ cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: false });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const issuer = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      ...clients.map((c) => ({
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: 'orders.read orders.write',
        ...c,
      })),
      { ...INTROSPECTOR, grant_types: [], redirect_uris: [], response_types: [] },
    ],
    scopes: ['orders.read', 'orders.write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      ...(tls === undefined ? {} : { mTLS: mtlsFeature() }),
      ...options.features,
    },
    ttl: { ClientCredentials: options.ttlSeconds ?? 600 },
    ...(options.discovery === undefined ? {} : { discovery: options.discovery }),
    // Its SSRF guard (a dispatcher that drops connections to special-use addresses) would refuse the gateway on 127.0.0.1.
    ...(options.loopbackJwksUri === true
      ? {
          fetch: (url: URL | string, init: RequestInit & { dispatcher?: unknown }) =>
            fetch(url, { ...init, dispatcher: undefined } as RequestInit),
        }
      : {}),
    // DPoP proofs (RFC 9449) in every algorithm tokengate signs them with; the default is ES256 and EdDSA only.
    enabledJWA: { clientAuthSigningAlgValues: CLIENT_AUTH_ALGORITHMS, dPoPSigningAlgValues: DPOP_PROOF_ALGORITHMS },
    clientAuthMethods: [
      'client_secret_basic',
      'client_secret_post',
      'client_secret_jwt',
      'private_key_jwt',
      'none',
      ...(tls === undefined ? [] : ['tls_client_auth', 'self_signed_tls_client_auth']),
    ],
  } as never);
  const result: OidcServer = {
    issuer,
    tokenUrl: `${issuer}/token`,
    tokenRequests: 0,
    discoveryRequests: 0,
    provider,
    async introspect(token: string) {
      const response = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${INTROSPECTOR.client_id}:${INTROSPECTOR.client_secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token }).toString(),
      });
      return (await response.json()) as Record<string, unknown>;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.url === '/token') result.tokenRequests++;
    if (req.method === 'GET' && req.url?.startsWith('/.well-known/') === true) result.discoveryRequests++;
    void callback(req, res);
  });
  return result;
}
