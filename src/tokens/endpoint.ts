/**
 * The token endpoint client: one client-credentials request (RFC 6749 §4.4), its answer parsed per
 * §5.1 / §5.2. This is the one boundary where transport and token-endpoint failures become
 * TokenErrors; retries and caching live in provider.ts.
 */
import type http from 'node:http';
import { request, type Dispatcher } from 'undici';
import { untilAborted } from './deadline.js';
import { TokenError, type FailureCause } from '../errors/gateway.js';
import { reasonForOAuthError } from '../errors/reasons.js';
import { sanitizeText } from '../errors/sanitize.js';
import { scrubSpellings, spellingsOf } from './credential-spellings.js';
import { describeCause, transportCause, withCheck, type EndpointKey } from './failure-cause.js';
import { MAX_TOKEN_LIFETIME_S } from './lifetime.js';

/** Token responses are small; anything bigger is not a token response (or is an attack). */
export const MAX_TOKEN_RESPONSE_BYTES = 256 * 1024;
/** Kept here for importers; the constant lives with the other lifetimes. */
export { MAX_TOKEN_LIFETIME_S };
const ACCESS_TOKEN = /^[\x21-\x7e]+$/;

export interface TokenResponse {
  readonly accessToken: string;
  readonly tokenType: string;
  /** Seconds, as the server sent it (validated), or undefined when absent. */
  readonly expiresIn: number | undefined;
  readonly scope: string | undefined;
}

export interface HttpCallOptions {
  url: URL;
  headers: Record<string, string>;
  /** The connection's undici dispatcher (auth-server-dispatcher.ts: TLS settings, connect time-out). */
  dispatcher?: Dispatcher | undefined;
  /**
   * The call's deadline, kept by the provider (deadline.ts): when it aborts, the call is over and
   * its socket destroyed. The transport arms no timer of its own for the whole call.
   */
  signal: AbortSignal;
}

export interface PostFormOptions extends HttpCallOptions {
  body: string;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * How a request reaches an authorization server: POST a form (`body`) or GET (none). Swappable
 * (oauth4webapi's customFetch) so the token logic can be driven without a socket; the default is
 * callAuthServer. A transport must settle, but callers do not rely on it (callUntilAborted).
 */
export type AuthServerTransport = (options: HttpCallOptions & { body?: string }) => Promise<RawResponse>;

/** A time-out: the connect phase's, or the deadline's (the call's signal aborted). */
export class TimeoutSignal extends Error {}
class TooLarge extends Error {}
/** The peer answered something that is not an HTTP response to this request. */
class NotAnAnswer extends Error {
  readonly code = 'EPROTO';
}

/**
 * One call to an authorization server through undici (the same client stack as the upstreams).
 * Never follows redirects (undici does not without an interceptor), caps the response body, ends
 * with its signal (the connect phase also with the dispatcher's connect time-out), and settles on
 * every way a request can end: a response, an error, an abort, an unasked protocol switch (undici
 * refuses it), or a bare close.
 */
export const callAuthServer: AuthServerTransport = async (options) => {
  const { url, body, signal } = options;
  // Aborted by the deadline above this call: for the server's account, that is a time-out.
  const timedOut = () => new TimeoutSignal('token request timed out', { cause: signal.reason });
  if (signal.aborted) throw timedOut();
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, {
      dispatcher: options.dispatcher,
      method: body === undefined ? 'GET' : 'POST',
      headers:
        body === undefined
          ? { ...options.headers, accept: 'application/json' }
          : { ...options.headers, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      signal,
    });
  } catch (error) {
    throw signal.aborted ? timedOut() : notAnAnswer(error);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_TOKEN_RESPONSE_BYTES) throw new TooLarge(`token response larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    // Whatever is left of the exchange is of no use now; a socket in doubt never goes back to the pool.
    response.body.destroy();
    throw signal.aborted ? timedOut() : error instanceof TooLarge ? error : notAnAnswer(error);
  }
  return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) };
};

/**
 * undici's words for a peer that did not answer this request with HTTP, as the causes an operator
 * reads; socket and TLS errors (a code of node's) pass unchanged to transportCause.
 */
function notAnAnswer(error: unknown): unknown {
  const { code, message } = error as { code?: string; message?: string };
  // RFC 9110 §15.2.2: a 101 answers only a request that asked to switch, and ours never do.
  if (code === 'UND_ERR_SOCKET' && message === 'bad upgrade')
    return new NotAnAnswer('the token endpoint switched protocols unasked (HTTP 101)', { cause: error });
  if (code === 'UND_ERR_SOCKET') return new NotAnAnswer('the connection closed before a complete answer', { cause: error });
  return error;
}

/**
 * One transport call whose wait ends when its signal aborts, whatever the transport does or fails
 * to do (a swapped transport may never settle): then a TimeoutSignal saying `timedOut`.
 */
export function callUntilAborted(
  transport: AuthServerTransport,
  options: HttpCallOptions & { body?: string },
  timedOut: string,
): Promise<RawResponse> {
  // The executor turns a synchronous throw of the transport into a rejection.
  const call = new Promise<RawResponse>((started) => started(transport(options)));
  return untilAborted(call, options.signal, (reason) => new TimeoutSignal(timedOut, { cause: reason }));
}

/** `Retry-After` as seconds (delta or HTTP date), or undefined. */
function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function invalid(detail: string, status: number, host?: string): TokenError {
  return new TokenError('TOKEN_RESPONSE_INVALID', 'invalid_response', {
    detail: host === undefined ? detail : `the token endpoint ${host} sent an unusable answer: ${detail}`,
    endpointStatus: status,
    endpointHost: host,
  });
}

/**
 * RFC 6749 Appendix A.12: 1*VSCHAR. Anything else (a space, non-ASCII) cannot go into the
 * Authorization header: Node would throw when the request to the upstream is built.
 */
export function isInjectableToken(value: unknown): value is string {
  return typeof value === 'string' && ACCESS_TOKEN.test(value);
}

/** RFC 6749 §5.1. A token we cannot use is an error now, not a 401 from the upstream later. */
function parseTokenResponse(status: number, body: Buffer, expected: 'Bearer' | 'DPoP', host: string): TokenResponse {
  const json = parseJson(body);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalid('the token response is not a JSON object', status, host);
  }
  const fields = json as Record<string, unknown>;
  const accessToken = fields.access_token;
  if (!isInjectableToken(accessToken)) {
    throw invalid('the token response has no usable access_token', status, host);
  }
  // §5.1 makes token_type REQUIRED; a few servers omit it, and Bearer is then the only sane reading.
  const tokenType = fields.token_type === undefined ? 'Bearer' : fields.token_type;
  if (expected === 'DPoP' && (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'dpop')) {
    // RFC 9449 §5: a server that did not bind the token says so with another token_type; using it
    // as a Bearer token would silently give up what the connection asked for.
    const said = typeof tokenType === 'string' ? JSON.stringify(sanitizeText(tokenType, 32)) : 'none';
    throw invalid(`token_type ${said} where DPoP was asked for: the server did not bind the token to the key`, status, host);
  }
  if (expected === 'Bearer' && (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer')) {
    throw invalid(
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- any JSON value a peer sent, shown as String() renders it
      `unsupported token_type ${JSON.stringify(sanitizeText(String(tokenType), 32))}; tokengate injects Bearer tokens only`,
      status,
      host,
    );
  }
  let expiresIn: number | undefined;
  const rawExpires = fields.expires_in;
  if (rawExpires !== undefined && rawExpires !== null) {
    // Some servers send the number as a string ("3600"); anything else non-numeric is unusable.
    const value = typeof rawExpires === 'string' && /^\d+$/.test(rawExpires.trim()) ? Number(rawExpires) : rawExpires;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw invalid('expires_in is not a non-negative number of seconds', status, host);
    }
    expiresIn = Math.min(value, MAX_TOKEN_LIFETIME_S);
  }
  const scope = typeof fields.scope === 'string' ? fields.scope : undefined;
  return { accessToken, tokenType: expected, expiresIn, scope };
}

const REDACTED = '[redacted]';

/**
 * The client credentials a token request carries, in every spelling a server could quote them
 * (credential-spellings.ts): client_secret (RFC 6749 §2.3.1, in the form or form-encoded inside
 * Basic) and client_assertion (RFC 7523 §2.2). Some servers quote what they were sent in
 * error_description, and that text reaches callers, logs, /usage and the console's Test.
 */
function credentialsIn(options: PostFormOptions): string[] {
  const form = new URLSearchParams(options.body);
  const clientId = form.get('client_id') ?? undefined;
  const found = [form.get('client_secret'), form.get('client_assertion')].flatMap((value) =>
    value === null ? [] : spellingsOf(value, clientId),
  );
  const basic = /^Basic\s+(\S+)$/i.exec(options.headers.authorization ?? '');
  if (basic !== null) {
    const pair = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    const decode = (text: string) => new URLSearchParams(`s=${text}`).get('s') ?? text;
    found.push(basic[1]!, ...spellingsOf(decode(pair.slice(colon + 1)), decode(pair.slice(0, Math.max(colon, 0)))));
  }
  return found.filter((value) => value !== '');
}

/** `text` with every credential replaced, before it is sanitised (and cut) for reuse. */
function scrub(text: unknown, credentials: readonly string[]): unknown {
  return typeof text === 'string' ? scrubSpellings(text, credentials, REDACTED) : text;
}

/** RFC 6749 §5.2 and everything else a token endpoint can say instead of a token. */
function errorFromResponse(
  status: number,
  headers: http.IncomingHttpHeaders,
  body: Buffer,
  host: string,
  credentials: readonly string[] = [],
): TokenError {
  const json = parseJson(body) as Record<string, unknown> | undefined;
  const error = scrub(json?.error, credentials);
  const oauthError = typeof error === 'string' ? sanitizeText(error, 64) : undefined;
  const description = sanitizeText(scrub(json?.error_description, credentials));
  const said = oauthError === undefined ? '' : `: ${oauthError}${description === undefined ? '' : `: ${description}`}`;
  const failureCause: FailureCause = { text: `HTTP ${status}` };
  // A 5xx, a 429, or an informational status as the final answer (a 101 without Upgrade, say): the
  // server is not answering the request, and another try may find it well.
  if (status >= 500 || status === 429 || status < 200) {
    return new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'http_status', {
      detail: `the token endpoint ${host} answered HTTP ${status}${said}`,
      endpointStatus: status,
      oauthError,
      description,
      retryable: true,
      retryAfter: parseRetryAfter(headers['retry-after']),
      endpointHost: host,
      failureCause,
    });
  }
  const detail = `the token endpoint ${host} refused the token request (HTTP ${status})${said}`;
  if (oauthError !== undefined) {
    return new TokenError('TOKEN_REJECTED', reasonForOAuthError(oauthError), {
      detail,
      endpointStatus: status,
      oauthError,
      description,
      endpointHost: host,
      failureCause,
    });
  }
  return new TokenError('TOKEN_REJECTED', 'http_status', { detail, endpointStatus: status, endpointHost: host, failureCause });
}

/**
 * Transport failures (no HTTP answer) as TokenErrors whose detail names the server (`what` at
 * `host`) and the cause; a config-shaped cause says which key to check (`key`).
 */
export function transportError(error: unknown, what: string, host: string, key: EndpointKey): TokenError {
  const server = `the ${what} ${host}`;
  if (error instanceof TimeoutSignal) {
    const failureCause: FailureCause = { text: error.message };
    return new TokenError('TOKEN_ENDPOINT_TIMEOUT', 'timeout', {
      detail: `${server} did not answer in time (${error.message})`,
      retryable: true,
      cause: error,
      endpointHost: host,
      failureCause,
    });
  }
  if (error instanceof TooLarge) return invalid(error.message, 200, host);
  if (error instanceof NotAnAnswer) {
    return new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'network', {
      detail: `${server} gave no answer: ${error.message}`,
      retryable: true,
      cause: error,
      endpointHost: host,
      failureCause: { text: error.message },
    });
  }
  const failureCause = transportCause(error, key);
  return new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'network', {
    detail: withCheck(`cannot reach ${server}: ${describeCause(failureCause)}`, failureCause),
    retryable: true,
    cause: error,
    endpointHost: host,
    failureCause,
  });
}

/** What a DPoP token request (RFC 9449 §5) adds: every answer's headers are seen (nonces), and the token must be DPoP. */
export interface DpopTokenRequest {
  onAnswer(headers: http.IncomingHttpHeaders): void;
}

/** One token request; every failure comes back as a TokenError with a reason. */
export async function requestToken(
  options: PostFormOptions,
  transport: AuthServerTransport = callAuthServer,
  dpop?: DpopTokenRequest,
  key: EndpointKey = 'tokenUrl',
): Promise<TokenResponse> {
  const { host } = options.url;
  let response: RawResponse;
  try {
    response = await callUntilAborted(transport, options, 'token request timed out');
  } catch (error) {
    throw transportError(error, 'token endpoint', host, key);
  }
  dpop?.onAnswer(response.headers);
  if (response.status >= 200 && response.status < 300)
    return parseTokenResponse(response.status, response.body, dpop === undefined ? 'Bearer' : 'DPoP', host);
  throw errorFromResponse(response.status, response.headers, response.body, host, credentialsIn(options));
}
