/**
 * One connection's way to its token endpoint: where it is (configured, or discovered from the
 * issuer), how the client authenticates, and the keep-alive agent the requests share.
 */
import http from 'node:http';
import https from 'node:https';
import type { Connection } from '../config/load.js';
import { TokenError } from '../errors.js';
import { callAuthServer, requestToken, transportError, type TokenResponse } from './endpoint.js';

export interface AuthServerMetadata {
  readonly issuer: string;
  readonly tokenEndpoint: string;
}

/**
 * OIDC Discovery 1.0 §4 first (issuer + /.well-known/openid-configuration), then RFC 8414 §3
 * (/.well-known/oauth-authorization-server inserted before the issuer's path).
 */
export function discoveryUrls(issuer: string): URL[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  return [
    new URL(`${url.origin}${path}/.well-known/openid-configuration`),
    new URL(`${url.origin}/.well-known/oauth-authorization-server${path}`),
  ];
}

export class ConnectionClient {
  readonly connection: Connection;
  readonly #agent: http.Agent;
  #metadata: Promise<AuthServerMetadata> | undefined;

  constructor(connection: Connection) {
    this.connection = connection;
    const target = connection.tokenUrl ?? connection.issuer ?? '';
    const options = { keepAlive: true, maxSockets: 16, keepAliveMsecs: 1_000 };
    this.#agent = target.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
  }

  /**
   * The token endpoint and issuer, discovering them (once, shared) when only issuer is set;
   * discovery spends at most `timeoutMs` of the caller's time.
   */
  metadata(timeoutMs = this.connection.timeouts.totalMs): Promise<AuthServerMetadata> {
    const { tokenUrl, issuer } = this.connection;
    if (tokenUrl !== undefined) return Promise.resolve({ issuer: issuer ?? '', tokenEndpoint: tokenUrl });
    this.#metadata ??= this.#discover(issuer!, Date.now() + timeoutMs).catch((error: unknown) => {
      this.#metadata = undefined;
      throw error;
    });
    return this.#metadata;
  }

  async #discover(issuer: string, deadline: number): Promise<AuthServerMetadata> {
    const { connectMs } = this.connection.timeouts;
    let lastError: TokenError | undefined;
    for (const url of discoveryUrls(issuer)) {
      let response;
      try {
        const timeoutMs = Math.max(1, deadline - Date.now());
        response = await callAuthServer({ url, headers: {}, connectTimeoutMs: Math.min(connectMs, timeoutMs), timeoutMs, agent: this.#agent });
      } catch (error) {
        throw transportError(error, 'discovery endpoint');
      }
      if (response.status === 404) {
        lastError = new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'http_status', { detail: `no discovery document at ${url.pathname}`, endpointStatus: 404 });
        continue;
      }
      if (response.status < 200 || response.status >= 300) {
        throw new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'http_status', {
          detail: `the discovery endpoint answered HTTP ${response.status}`,
          endpointStatus: response.status,
          retryable: response.status >= 500 || response.status === 429,
        });
      }
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(response.body.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new TokenError('TOKEN_RESPONSE_INVALID', 'invalid_response', { detail: 'the discovery document is not JSON', endpointStatus: response.status });
      }
      // OIDC Discovery §4.3 / RFC 8414 §3.3: the document's issuer MUST equal the one we asked.
      if (doc.issuer !== issuer) {
        throw new TokenError('TOKEN_RESPONSE_INVALID', 'invalid_response', {
          detail: `discovery issuer mismatch: configured ${issuer}, the document says ${String(doc.issuer).slice(0, 200)}`,
          endpointStatus: response.status,
        });
      }
      const endpoint = doc.token_endpoint;
      if (typeof endpoint !== 'string' || !/^https?:\/\//.test(endpoint)) {
        throw new TokenError('TOKEN_RESPONSE_INVALID', 'invalid_response', { detail: 'the discovery document has no token_endpoint', endpointStatus: response.status });
      }
      return { issuer, tokenEndpoint: endpoint };
    }
    throw lastError!;
  }

  /** One token request with the given effective params; a fresh client assertion every call. */
  async requestToken(params: Readonly<Record<string, string>>, timeoutMs: number): Promise<TokenResponse> {
    const deadline = Date.now() + timeoutMs;
    const metadata = await this.metadata(timeoutMs);
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    for (const [name, value] of Object.entries(params)) body.set(name, value);
    const headers: Record<string, string> = {};
    await this.connection.auth.apply(body, headers, { tokenEndpoint: metadata.tokenEndpoint, issuer: metadata.issuer || undefined });
    // Discovery (and signing) came out of the same time-out: the token request gets what is left.
    const remainingMs = Math.max(1, deadline - Date.now());
    try {
      return await requestToken({
        url: new URL(metadata.tokenEndpoint),
        body: body.toString(),
        headers,
        connectTimeoutMs: Math.min(this.connection.timeouts.connectMs, remainingMs),
        timeoutMs: remainingMs,
        agent: this.#agent,
      });
    } catch (error) {
      // A token endpoint that moved shows up as a network error: look the metadata up again.
      if (error instanceof TokenError && error.reason === 'network' && this.connection.tokenUrl === undefined) this.#metadata = undefined;
      throw error;
    }
  }

  close(): void {
    this.#agent.destroy();
  }
}
