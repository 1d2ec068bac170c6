/**
 * The spans of one request, after OpenTelemetry's stable HTTP semantic conventions: the SERVER
 * span of the caller's request, a CLIENT span per upstream attempt (a 401 replay is a second one,
 * with `http.request.resend_count`), and a CLIENT span per token-endpoint attempt.
 *
 * Attributes never carry a header, a token, a client credential or a query value: URLs go through
 * redact.ts, and the token spans say only the connection, the outcome and the failure reason.
 */
import type { IncomingMessage } from 'node:http';
import {
  SpanKind,
  SpanStatusCode,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapPropagator,
  type Tracer,
} from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import { TokenError } from '../errors/gateway.js';
import { redactAbsoluteUrl, redactQuery, redactUrl } from './redact.js';
import type { TokenAttemptSpan, TokenTracer } from '../tokens/tracer.js';

export const ATTR_TOKENGATE_ROUTE = 'tokengate.route';
export const ATTR_TOKENGATE_TOKEN_CACHE = 'tokengate.token.cache';
export const ATTR_TOKENGATE_CONNECTION = 'tokengate.connection';
export const ATTR_TOKENGATE_TOKEN_OUTCOME = 'tokengate.token.outcome';
export const ATTR_TOKENGATE_TOKEN_FAILURE_REASON = 'tokengate.token.failure_reason';
export const ATTR_TOKENGATE_OAUTH_ERROR = 'tokengate.token.oauth_error';
export const ATTR_TOKENGATE_REQUEST_ID = 'tokengate.request_id';
const UNMATCHED = 'unmatched';

/** The conventions' known methods; any other is reported as `_OTHER`, its name in `http.request.method_original`. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** Where an upstream attempt goes (the route's compiled upstream). */
export interface UpstreamTarget {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: string;
}

/** `host[:port]` or `[v6][:port]` → address and port (undefined when absent or malformed). */
function splitAuthority(authority: string): [string, number | undefined] {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(authority);
  if (match === null) return [authority, undefined];
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  return [host, match[2] === undefined ? undefined : Number(match[2])];
}

const NOT_RECORDED: TokenAttemptSpan = { end: () => undefined };

export class RequestTrace implements TokenTracer {
  readonly #tracer: Tracer;
  readonly #propagator: TextMapPropagator;
  readonly #span: Span;
  /** The SERVER span's context: the parent of every CLIENT span of this request. */
  readonly #context: Context;
  /** False for a caller's unsampled trace (or one the ratio left out): nothing is recorded, only propagated. */
  readonly #recording: boolean;
  readonly #method: string;
  #route = false;
  #upstream: Span | undefined;
  #upstreamAttempts = 0;
  /** The gateway's error code, when the gateway itself answered with a problem. */
  #errorType: string | undefined;

  constructor(
    tracer: Tracer,
    propagator: TextMapPropagator,
    parent: Context,
    req: IncomingMessage,
    method: string,
    scheme: 'http' | 'https',
    requestId: string,
  ) {
    this.#tracer = tracer;
    this.#propagator = propagator;
    const known = KNOWN_METHODS.has(method);
    this.#method = known ? method : '_OTHER';
    this.#span = tracer.startSpan(known ? method : 'HTTP', { kind: SpanKind.SERVER }, parent);
    this.#context = trace.setSpan(parent, this.#span);
    this.#recording = this.#span.isRecording();
    if (!this.#recording) return;
    let target = req.url ?? '/';
    // Absolute-form (RFC 9112 §3.2.2): the path and query start after the authority.
    if (target.charCodeAt(0) !== 47 /* / */) target = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '') || '/';
    const mark = target.indexOf('?');
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: this.#method,
      [ATTR_URL_SCHEME]: scheme,
      [ATTR_URL_PATH]: mark === -1 ? target : target.slice(0, mark),
      [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersion,
      [ATTR_TOKENGATE_REQUEST_ID]: requestId,
    };
    if (!known) attributes[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = method;
    if (mark !== -1) attributes[ATTR_URL_QUERY] = redactQuery(target.slice(mark + 1));
    if (req.socket.remoteAddress !== undefined) attributes[ATTR_CLIENT_ADDRESS] = req.socket.remoteAddress;
    const host = req.headers.host;
    if (host !== undefined) {
      const [address, port] = splitAuthority(host);
      attributes[ATTR_SERVER_ADDRESS] = address;
      if (port !== undefined) attributes[ATTR_SERVER_PORT] = port;
    }
    this.#span.setAttributes(attributes);
  }

  /** The request matched route `name`: the span is named `{method} {route name}`. */
  route(name: string, pathPrefix: string): void {
    this.#route = true;
    if (!this.#recording) return;
    this.#span.updateName(`${this.#spanMethod()} ${name}`);
    this.#span.setAttributes({ [ATTR_TOKENGATE_ROUTE]: name, [ATTR_HTTP_ROUTE]: pathPrefix });
  }

  /** Whether the route's token came from the cache. */
  cache(result: 'hit' | 'miss'): void {
    if (this.#recording) this.#span.setAttribute(ATTR_TOKENGATE_TOKEN_CACHE, result);
  }

  /**
   * Opens the CLIENT span of an upstream attempt and puts its traceparent (and tracestate) into
   * the outgoing header list, replacing the caller's: the upstream's parent is this attempt.
   */
  upstreamStart(headers: string[], upstream: UpstreamTarget, path: string): void {
    this.upstreamEnd();
    const span = this.#tracer.startSpan(this.#spanMethod(), { kind: SpanKind.CLIENT }, this.#context);
    this.#upstream = span;
    if (this.#recording) {
      const host = upstream.hostname.includes(':') ? `[${upstream.hostname}]` : upstream.hostname;
      const attributes: Attributes = {
        [ATTR_HTTP_REQUEST_METHOD]: this.#method,
        [ATTR_URL_FULL]: redactUrl(`${upstream.protocol}//${host}:${upstream.port}`, path),
        [ATTR_SERVER_ADDRESS]: upstream.hostname,
        [ATTR_SERVER_PORT]: Number(upstream.port),
      };
      if (this.#upstreamAttempts > 0) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = this.#upstreamAttempts;
      span.setAttributes(attributes);
    }
    this.#upstreamAttempts++;
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      const name = headers[i]!.toLowerCase();
      if (name === 'traceparent' || name === 'tracestate') headers.splice(i, 2);
    }
    const carrier: Record<string, string> = {};
    this.#propagator.inject(trace.setSpan(this.#context, span), carrier, defaultTextMapSetter);
    for (const name in carrier) headers.push(name, carrier[name]!);
  }

  /** The upstream's answer (its status line); RFC 9110 4xx and 5xx mark a CLIENT span as failed. */
  upstreamResponse(status: number): void {
    const span = this.#upstream;
    if (span === undefined || !this.#recording) return;
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (status >= 400) {
      span.setAttribute(ATTR_ERROR_TYPE, String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }

  /** The attempt is over (its answer was passed on, or a 401 is about to be replayed). */
  upstreamEnd(): void {
    this.#upstream?.end();
    this.#upstream = undefined;
  }

  /** The attempt failed without an answer: `errorType` is `timeout` or the socket error's code. */
  upstreamFailed(errorType: string): void {
    const span = this.#upstream;
    if (span === undefined) return;
    if (this.#recording) {
      span.setAttribute(ATTR_ERROR_TYPE, errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    this.upstreamEnd();
  }

  /** The gateway answered with a problem of this code (error.type of a 5xx SERVER span). */
  failed(code: string): void {
    this.#errorType = code;
  }

  /**
   * The caller's answer is complete (or the caller left: 499). A SERVER span is an error only for
   * a 5xx: a 4xx is the caller's doing (semantic conventions, "Status").
   */
  end(status: number): void {
    this.upstreamEnd();
    if (this.#recording) {
      const attributes: Attributes = { [ATTR_HTTP_RESPONSE_STATUS_CODE]: status };
      if (!this.#route) attributes[ATTR_TOKENGATE_ROUTE] = UNMATCHED;
      if (status >= 500) {
        attributes[ATTR_ERROR_TYPE] = this.#errorType ?? String(status);
        this.#span.setStatus({ code: SpanStatusCode.ERROR });
      }
      this.#span.setAttributes(attributes);
    }
    this.#span.end();
  }

  tokenAttempt(connection: string, attempt: number): TokenAttemptSpan {
    if (!this.#recording) return NOT_RECORDED;
    const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: 'POST', [ATTR_TOKENGATE_CONNECTION]: connection };
    if (attempt > 1) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = attempt - 1;
    return new TokenAttempt(this.#tracer.startSpan('POST', { kind: SpanKind.CLIENT, attributes }, this.#context));
  }

  #spanMethod(): string {
    return this.#method === '_OTHER' ? 'HTTP' : this.#method;
  }
}

class TokenAttempt implements TokenAttemptSpan {
  readonly #span: Span;

  constructor(span: Span) {
    this.#span = span;
  }

  end(endpoint: string | undefined, error?: unknown): void {
    const span = this.#span;
    if (endpoint !== undefined && URL.canParse(endpoint)) {
      const url = new URL(endpoint);
      span.setAttributes({
        [ATTR_URL_FULL]: redactAbsoluteUrl(url),
        [ATTR_SERVER_ADDRESS]: url.hostname.replace(/^\[|\]$/g, ''),
        [ATTR_SERVER_PORT]: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      });
    }
    if (error === undefined) {
      span.setAttribute(ATTR_TOKENGATE_TOKEN_OUTCOME, 'success');
    } else {
      // The reason is a fixed word (invalid_client, timeout, network, ...); error text is never copied.
      const reason = error instanceof TokenError ? error.reason : 'internal';
      const attributes: Attributes = {
        [ATTR_TOKENGATE_TOKEN_OUTCOME]: 'failure',
        [ATTR_TOKENGATE_TOKEN_FAILURE_REASON]: reason,
        [ATTR_ERROR_TYPE]: reason,
      };
      if (error instanceof TokenError) {
        if (error.endpointStatus !== undefined) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = error.endpointStatus;
        if (error.oauthError !== undefined) attributes[ATTR_TOKENGATE_OAUTH_ERROR] = error.oauthError;
      }
      span.setAttributes(attributes);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }
}
