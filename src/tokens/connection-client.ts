/**
 * One connection's way to its token endpoint: where it is (configured, or discovered from the
 * issuer), how the client authenticates, and the undici dispatcher the requests share.
 */
import type { Connection } from '../config/load.js';
import type { ClientAuth } from '../config/types.js';
import { TokenError } from '../errors/gateway.js';
import { sanitizeText } from '../errors/sanitize.js';
import type { Agent } from 'undici';
import { authServerDispatcher } from './auth-server-dispatcher.js';
import { untilAborted } from './deadline.js';
import type { DpopObserver } from './types.js';
import {
  callAuthServer,
  callUntilAborted,
  requestToken,
  TimeoutSignal,
  transportError,
  type AuthServerTransport,
  type TokenResponse,
} from './endpoint.js';

/** Which client secret the last successful token request used (`clientSecret.previous`). */
export type SecretInUse = 'current' | 'previous';

/**
 * RFC 6749 §5.2: the answers that say the client's credentials were refused. Only these send the
 * request again with the previous secret; any other error would be the same with either.
 */
const REFUSED_CREDENTIALS = new Set(['invalid_client', 'unauthorized_client']);

export interface AuthServerMetadata {
  /** The issuer identifier; undefined for a connection configured with tokenUrl. */
  readonly issuer: string | undefined;
  readonly tokenEndpoint: string;
}

/**
 * OIDC Discovery 1.0 §4 first (issuer + /.well-known/openid-configuration), then RFC 8414 §3
 * (/.well-known/oauth-authorization-server inserted before the issuer's path).
 */
function discoveryUrls(issuer: string): URL[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  return [
    new URL(`${url.origin}${path}/.well-known/openid-configuration`),
    new URL(`${url.origin}/.well-known/oauth-authorization-server${path}`),
  ];
}

export class ConnectionClient {
  readonly connection: Connection;
  /** The dispatcher for the issuer and the token endpoint alike (one undici Agent serves every origin). */
  readonly #dispatcher: Agent;
  #metadata: Promise<AuthServerMetadata> | undefined;
  #discovered: string | undefined;
  /**
   * RFC 8705 §5: a server may take mutual-TLS clients at other endpoints, announced in its
   * metadata as mtls_endpoint_aliases; a connection with a client certificate uses those.
   */
  readonly #mutualTls: boolean;
  readonly #transport: AuthServerTransport;

  readonly #observer: DpopObserver | undefined;
  #secretInUse: SecretInUse = 'current';

  constructor(connection: Connection, transport: AuthServerTransport = callAuthServer, observer?: DpopObserver) {
    this.connection = connection;
    this.#observer = observer;
    this.#mutualTls = connection.auth.tlsCredentials !== undefined;
    this.#transport = transport;
    this.#dispatcher = authServerDispatcher(connection.tls, connection.auth.tlsCredentials, connection.timeouts.connectMs);
  }

  /**
   * The token endpoint and issuer, discovering them (once, shared) when only issuer is set. The
   * discovery runs under the signal of the caller that started it; every caller stops waiting when
   * its own signal aborts.
   */
  metadata(signal: AbortSignal = AbortSignal.timeout(this.connection.timeouts.totalMs)): Promise<AuthServerMetadata> {
    const { tokenUrl, issuer } = this.connection;
    if (tokenUrl !== undefined) return Promise.resolve({ issuer: undefined, tokenEndpoint: tokenUrl });
    // Shared by every caller until it settles, which the first caller's signal guarantees.
    this.#metadata ??= this.#discover(issuer!, signal).then(
      (metadata) => {
        this.#discovered = metadata.tokenEndpoint;
        return metadata;
      },
      (error: unknown) => {
        this.#metadata = undefined;
        throw error;
      },
    );
    return untilAborted(this.#metadata, signal, (reason) =>
      transportError(new TimeoutSignal('discovery timed out', { cause: reason }), 'discovery endpoint', new URL(issuer!).host, 'issuer'),
    );
  }

  /**
   * The secret the last successful token request used. Every token request tries the current one
   * first, so `previous` is retired by the first request the server accepts the current one for.
   */
  get secretInUse(): SecretInUse {
    return this.#secretInUse;
  }

  /** The token endpoint: configured, or the one discovery last found (undefined until it has run). */
  get tokenEndpoint(): string | undefined {
    return this.connection.tokenUrl ?? this.#discovered;
  }

  async #discover(issuer: string, signal: AbortSignal): Promise<AuthServerMetadata> {
    const tried: string[] = [];
    for (const url of discoveryUrls(issuer)) {
      let response;
      try {
        const call = { url, headers: {}, dispatcher: this.#dispatcher, signal };
        response = await callUntilAborted(this.#transport, call, 'discovery timed out');
      } catch (error) {
        throw transportError(error, 'discovery endpoint', url.host, 'issuer');
      }
      // A plain OAuth server has no OIDC document: any 4xx there means "try RFC 8414".
      if (response.status >= 400 && response.status < 500) {
        tried.push(`${url.pathname} (HTTP ${response.status})`);
        continue;
      }
      const invalid = (detail: string) =>
        new TokenError('TOKEN_RESPONSE_INVALID', 'invalid_response', {
          detail: `discovery at ${url.href}: ${detail}`,
          endpointStatus: response.status,
        });
      if (response.status < 200 || response.status >= 300) {
        throw new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'http_status', {
          detail: `discovery at ${url.href}: HTTP ${response.status}`,
          endpointStatus: response.status,
          retryable: true,
          endpointHost: url.host,
          failureCause: { text: `HTTP ${response.status}` },
        });
      }
      let doc: unknown;
      try {
        doc = JSON.parse(response.body.toString('utf8'));
      } catch {
        throw invalid('the metadata document is not JSON');
      }
      const fields = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
      // OIDC Discovery §4.3 / RFC 8414 §3.3: the document's issuer MUST be identical to the one asked
      // for; anything else may be an impersonating server.
      if (fields.issuer !== issuer) {
        const said = typeof fields.issuer === 'string' ? `"${sanitizeText(fields.issuer, 200) ?? ''}"` : 'no issuer';
        throw invalid(`issuer mismatch: the connection's issuer is "${issuer}" but the document says ${said}`);
      }
      const aliases = fields.mtls_endpoint_aliases;
      const endpoint =
        this.#mutualTls && typeof aliases === 'object' && aliases !== null && 'token_endpoint' in aliases
          ? aliases.token_endpoint
          : fields.token_endpoint;
      return { issuer, tokenEndpoint: checkedTokenEndpoint(endpoint, issuer, invalid) };
    }
    throw new TokenError('TOKEN_REJECTED', 'http_status', {
      detail: `no authorization server metadata for issuer "${issuer}": tried ${tried.join(' and ')}`,
      endpointStatus: 404,
    });
  }

  /**
   * One token request with the given effective params; a fresh client assertion every call. Over
   * when `signal` aborts (the provider's deadline, discovery included). On a DPoP connection the
   * endpoint may demand a nonce first: the request is then sent twice, and `onNonceChallenge` hears
   * of the first (it reached the endpoint, and took `seconds`) before the second is sent. So it does
   * of a request refused with the current secret and sent again with `clientSecret.previous`.
   */
  async requestToken(
    params: Readonly<Record<string, string>>,
    signal: AbortSignal,
    onNonceChallenge?: (seconds: number) => void,
  ): Promise<TokenResponse> {
    const metadata = await this.metadata(signal);
    const url = new URL(metadata.tokenEndpoint);
    const dpop = this.connection.dpopSigner;
    const sendWith = async (auth: ClientAuth): Promise<TokenResponse> => {
      const body = new URLSearchParams({ grant_type: 'client_credentials' });
      for (const [name, value] of Object.entries(params)) body.set(name, value);
      const headers: Record<string, string> = {};
      await auth.apply(body, headers, metadata);
      if (dpop !== undefined) headers.dpop = dpop.proof('POST', url.origin, url.pathname);
      // Discovery and signing came out of the same deadline: the token request gets what is left of it.
      const options = {
        url,
        body: body.toString(),
        headers,
        dispatcher: this.#dispatcher,
        signal,
      };
      const transport = this.#transport;
      // A token endpoint found by discovery is the issuer's to fix.
      const key = this.connection.tokenUrl === undefined ? 'issuer' : 'tokenUrl';
      return dpop === undefined
        ? requestToken(options, transport, undefined, key)
        : requestToken(options, transport, { onAnswer: (answer) => dpop.nonces.remember(url.origin, answer['dpop-nonce']) }, key);
    };
    const send = async (): Promise<TokenResponse> => {
      const { auth } = this.connection;
      const started = performance.now();
      try {
        const response = await sendWith(auth);
        this.#secretInUse = 'current';
        return response;
      } catch (error) {
        // clientSecret.previous: the server may not know the new secret yet (a rotation in progress).
        if (auth.previous === undefined || !(error instanceof TokenError) || !REFUSED_CREDENTIALS.has(error.oauthError ?? '')) throw error;
        onNonceChallenge?.((performance.now() - started) / 1000);
        this.#observer?.secretFallback?.(this.connection.key);
        const response = await sendWith(auth.previous);
        this.#secretInUse = 'previous';
        return response;
      }
    };
    try {
      if (dpop === undefined) return await send();
      const sentNonce = dpop.nonces.get(url.origin);
      const started = performance.now();
      try {
        return await send();
      } catch (error) {
        // RFC 9449 §8: use_dpop_nonce with a DPoP-Nonce is answered by one retry carrying it (and,
        // as every attempt, a fresh client assertion). Without a new nonce a retry would fail alike.
        if (!(error instanceof TokenError) || error.oauthError !== 'use_dpop_nonce' || dpop.nonces.get(url.origin) === sentNonce)
          throw error;
        onNonceChallenge?.((performance.now() - started) / 1000);
        this.#observer?.dpopNonceRetry?.(this.connection.key, 'token_endpoint');
        return await send();
      }
    } catch (error) {
      // A token endpoint that moved shows up as a network error: look the metadata up again.
      if (error instanceof TokenError && error.reason === 'network' && this.connection.tokenUrl === undefined) this.#metadata = undefined;
      throw error;
    }
  }

  close(): void {
    void this.#dispatcher.destroy().catch(() => undefined);
  }
}

/**
 * The discovered token_endpoint, if it is an absolute http(s) URL that does not downgrade an https
 * issuer to plain http (the client's credentials travel on it).
 */
function checkedTokenEndpoint(value: unknown, issuer: string, invalid: (detail: string) => TokenError): string {
  const protocol = typeof value === 'string' && URL.canParse(value) ? new URL(value).protocol : undefined;
  if (protocol !== 'https:' && protocol !== 'http:') throw invalid('no usable token_endpoint (an absolute https: URL)');
  if (protocol === 'http:' && new URL(issuer).protocol === 'https:') throw invalid('token_endpoint is plain http: under an https: issuer');
  // As sent: the default assertion audience is this exact string.
  return value as string;
}
