/**
 * The shapes a config takes after each stage of the pipeline (docs/reloads.md). The config layer
 * produces `CheckedConfig`; the runtime build (src/runtime/build.ts) turns it into the `Config` that runs.
 * Nothing here comes from the token or cache layers: they depend on the config, never the reverse.
 */
import type { RawConfig, RawConnection, RawRoute } from './schema.js';
import type { Secret } from './secret.js';
import type { TlsKeyPair, TlsVerify } from './tls.js';

export interface AccessPolicy {
  /** Lower-cased header name carrying the API key (an RFC 9110 token, checked at load). */
  readonly header: string;
  readonly apiKeys: readonly Secret[];
  /** CIDR blocks or addresses, each accepted by net.BlockList when the config was checked. */
  readonly allowFrom: readonly string[];
}

/** What a token request needs to know about the authorization server it is sent to. */
export interface ClientAuthContext {
  /** The token endpoint this request goes to (the default assertion audience). */
  tokenEndpoint: string;
  /** The authorization server's issuer identifier, when known (configured or discovered). */
  issuer: string | undefined;
}

/** A built client-authentication strategy (RFC 6749 §2.3, RFC 7523 §2.2, RFC 8705 §2). */
export interface ClientAuth {
  readonly method: string;
  /** The certificate and key the connection presents in the TLS handshake (mutual TLS only). */
  readonly tlsCredentials?: TlsKeyPair;
  /**
   * The same method with the previous client secret (`clientSecret.previous`): tried once when the
   * current one is refused with invalid_client or unauthorized_client.
   */
  readonly previous?: ClientAuth;
  /** Adds the client's credentials to a token request's form body and headers. */
  apply(body: URLSearchParams, headers: Record<string, string>, context: ClientAuthContext): void | Promise<void>;
}

/** How a connection authenticates, with its secrets resolved: what the compile stage builds a ClientAuth from. */
export type ClientCredentials =
  | {
      readonly kind: 'clientSecret';
      readonly method: 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt';
      readonly secret: Secret;
      readonly algorithm: 'HS256' | 'HS384' | 'HS512';
      /** `clientSecret.previous`: the secret being rotated out. */
      readonly previous: Secret | undefined;
    }
  | {
      readonly kind: 'privateKeyJwt';
      readonly key: Secret;
      readonly certificate: Secret | undefined;
      readonly settings: NonNullable<RawConnection['privateKeyJwt']>;
    }
  | {
      readonly kind: 'managedKeyJwt';
      readonly managed: ManagedKeySettings;
      readonly audience: NonNullable<RawConnection['privateKeyJwt']>['audience'];
    }
  | {
      readonly kind: 'clientAssertion';
      /** Absolute path of the assertion file. */
      readonly file: string;
      /** The file as the config names it (what details and logs show). */
      readonly configured: string;
      readonly type: string;
    }
  | {
      readonly kind: 'tlsClientAuth';
      readonly method: NonNullable<RawConnection['tlsClientAuth']>['method'];
      readonly credentials: TlsKeyPair;
    };

/** `privateKeyJwt.managed` with its durations in milliseconds. */
export interface ManagedKeySettings {
  readonly algorithm: NonNullable<NonNullable<RawConnection['privateKeyJwt']>['managed']>['algorithm'];
  readonly rotateEveryMs: number;
  readonly overlapMs: number;
}

/** A connection's `dpop` block with its key secret resolved (RFC 9449); the key is read by the compile stage. */
export interface DpopSettings {
  /** Undefined: a P-256 key generated for the life of the process. */
  readonly key: Secret | undefined;
  readonly algorithm: NonNullable<RawConnection['dpop']>['algorithm'];
}

/** The nonces a DPoP signer holds per origin (RFC 9449 §8, §9). */
export interface DpopNonces {
  get(origin: string): string | undefined;
  /** Takes a `DPoP-Nonce` header value (any text); true when it replaced the nonce held. */
  remember(origin: string, header: string | string[] | undefined): boolean;
}

/** What a DPoP connection signs proofs with (built by the compile stage: src/tokens/dpop/proof.ts). */
export interface DpopProofSigner {
  readonly algorithm: string;
  /** RFC 7638 SHA-256 thumbprint of the public key, base64url: the tokens' `cnf.jkt`. */
  readonly thumbprint: string;
  readonly nonces: DpopNonces;
  /** A fresh proof for `htm` to `origin` + `path` (no query), with `ath` when it goes with a token. */
  proof(htm: string, origin: string, path: string, ath?: string): string;
}

/** A connection as the config layer leaves it: checked, secrets resolved, not yet compiled. */
export interface ConnectionSettings {
  readonly key: string;
  readonly displayName: string;
  readonly clientId: string;
  readonly tokenUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly credentials: ClientCredentials;
  /** Verification of the token endpoint's certificate; undefined for the system roots. */
  readonly tls: TlsVerify | undefined;
  readonly params: Readonly<Record<string, string>>;
  readonly timeouts: RawConnection['timeouts'];
  readonly retry: RawConnection['retry'];
  readonly token: RawConnection['token'];
  /** `connections.KEY.dpop`: tokens bound to a key (RFC 9449); undefined for Bearer tokens. */
  readonly dpop: DpopSettings | undefined;
  /** Changes whenever anything that could change the tokens changes (config or secret values). */
  readonly fingerprint: string;
  /**
   * Changes whenever a change makes the connection's cached tokens unusable: anything but the value
   * of its client secret or signing key. A rotated secret keeps the tokens the old one obtained
   * (they stay valid until they expire); a mutual-TLS certificate is part of it (RFC 8705 §3: tokens
   * are bound to it), and so is the DPoP key.
   */
  readonly tokensFingerprint: string;
  /** Hash of the authorization server and client id: namespaces shared cache entries. */
  readonly identity: string;
}

/** A compiled connection: its settings plus the client-authentication strategy built from them. */
export interface Connection extends ConnectionSettings {
  readonly auth: ClientAuth;
  /** The signer built from `dpop`; undefined without it. */
  readonly dpopSigner: DpopProofSigner | undefined;
}

export interface Route extends Omit<RawRoute, 'access' | 'tls'> {
  readonly index: number;
  readonly upstreamUrl: URL;
  /** The connection's params overlaid with the route's (the token cache key uses these). */
  readonly effectiveParams: Readonly<Record<string, string>>;
  readonly access: AccessPolicy | undefined;
  /** Verification of an https: upstream's certificate; undefined for the system roots. */
  readonly tls: TlsVerify | undefined;
  /** The client certificate presented to the upstream (mutual TLS), if any. */
  readonly tlsCredentials: TlsKeyPair | undefined;
}

/** A Sentinel or Cluster node. */
export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/** Credentials and TLS of Redis nodes, resolved from secrets. */
export interface RedisAuth {
  readonly username: string | undefined;
  readonly password: Secret | undefined;
  /** TLS on when defined. */
  readonly tls: TlsVerify | undefined;
}

/** Where the shared token cache lives: exactly one of `cache.redis.url`, `.sentinel`, `.cluster`. */
export type RedisTopology =
  | { readonly kind: 'server'; readonly url: string }
  | (RedisAuth & {
      readonly kind: 'sentinel';
      readonly name: string;
      readonly nodes: readonly RedisNode[];
      readonly sentinelUsername: string | undefined;
      readonly sentinelPassword: Secret | undefined;
    })
  | (RedisAuth & { readonly kind: 'cluster'; readonly nodes: readonly RedisNode[] });

export interface RedisSettings {
  readonly keyPrefix: string;
  readonly topology: RedisTopology;
}

/** `admin.auth.oidc`: single sign-on for the console (src/admin/sso.ts), its secrets resolved. */
export interface AdminOidc {
  readonly issuer: string;
  readonly clientId: string;
  readonly credentials: Extract<ClientCredentials, { kind: 'clientSecret' | 'privateKeyJwt' }>;
  /** Built by the compile stage from `credentials` (undefined before it), as a connection's is. */
  readonly clientAuth?: ClientAuth;
  readonly redirectUrl: string | undefined;
  readonly scopes: readonly string[];
  readonly roles: { readonly claim: string; readonly editors: readonly string[]; readonly viewers: readonly string[] };
  /** Changes whenever the provider, the client or its credentials change: the discovered client is rebuilt. */
  readonly fingerprint: string;
}

/** A config that passed every check of the config layer; `C` is what its connections are. */
export interface ConfigOf<C extends ConnectionSettings> {
  readonly file: string;
  readonly listen: Omit<RawConfig['listen'], 'tls'> & { readonly tls: TlsKeyPair | undefined };
  readonly admin: Omit<RawConfig['admin'], 'auth' | 'sessions'> & {
    /** The admin keys, resolved; undefined when admin.auth is not set (nothing may change the config). */
    readonly auth: { readonly apiKeys: readonly Secret[]; readonly oidc: AdminOidc | undefined } | undefined;
    readonly sessions: { readonly store: RawConfig['admin']['sessions']['store']; readonly ttlMs: number };
  };
  readonly logging: RawConfig['logging'];
  readonly cache: Omit<RawConfig['cache'], 'encryptionKey' | 'redis'> & {
    readonly encryptionKey: Secret | undefined;
    readonly redis: RedisSettings;
  };
  readonly access: AccessPolicy | undefined;
  readonly connections: ReadonlyMap<string, C>;
  readonly routes: readonly Route[];
  /** The YAML's `tracing` block as written; src/tracing/settings.ts overlays it on OTEL_* variables. */
  readonly tracing: RawConfig['tracing'];
  /** Things worth a warning at start-up and on reload (inline secrets, ...). */
  readonly warnings: readonly string[];
  /** Each `{ file: }` secret's absolute path, by secret name: followed while serving (src/config/secret-files.ts). */
  readonly secretFiles: ReadonlyMap<string, string>;
}

/** The config layer's result: parsed, substituted, validated, semantically checked. */
export type CheckedConfig = ConfigOf<ConnectionSettings>;

/** The config that runs: every connection compiled. */
export type Config = ConfigOf<Connection>;

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}
