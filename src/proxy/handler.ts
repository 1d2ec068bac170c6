/**
 * The proxy listener's request handler: normalise → match → access → token → inject → forward.
 * Everything per route (target, socket pool, metric children, token key) is built once per config in
 * proxy/compile.ts; the per-request path allocates only what each request really owns.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Histogram } from 'prom-client';
import type { Metrics, RequestCounts } from '../observability/metrics.js';
import type { Route } from '../config/types.js';
import { GatewayError, TokenError } from '../errors/gateway.js';
import { AccessLog, type Logger } from '../observability/log.js';
import { normalizePath, splitTarget } from '../routing/path.js';
import { hostName, upstreamPath } from '../routing/router.js';
import { dpopChallengeError } from '../tokens/dpop/nonces.js';
import { accessTokenHash } from '../tokens/dpop/proof.js';
import type { TokenProvider } from '../tokens/provider.js';
import type { CachedToken } from '../tokens/types.js';
import type { RequestTrace } from '../tracing/request-trace.js';
import type { Tracing } from '../tracing/tracing.js';
import type { AccessChecker } from './access.js';
import type { RouteDpop, RouteRuntime, Runtime } from './compile.js';

export type { Runtime } from './compile.js';
import { acceptRequestId, callerResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { writeProblem } from '../errors/problem.js';
import { HEAD_TIMEOUT_CODE, UNUSABLE_ANSWER_CODE, UpstreamCall, type UpstreamCallEvents } from './upstream-call.js';
import { responseOnSocket, switchingProtocolsHead, Upgrades } from './upgrade.js';

const UNMATCHED = 'unmatched';
/** The status counted and logged for a request whose caller hung up before any answer (nginx's). */
const CLIENT_CLOSED_REQUEST = 499;

/**
 * Per-request state, one object per matched request. The event listeners of the caller's response
 * and of the upstream request find it under EXCHANGE, so they are shared functions, not closures.
 */
interface Exchange {
  readonly handler: ProxyHandler;
  /** The config the request began on: a reload in between does not change how it ends. */
  readonly runtime: Runtime;
  readonly route: RouteRuntime;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  readonly requestId: string;
  readonly started: number;
  /** The Host (or absolute-form authority) the caller sent. */
  readonly authority: string | undefined;
  token: CachedToken | undefined;
  /** The buffered request body, when the request may be replayed after a 401. */
  body: Buffer | undefined;
  replayable: boolean;
  replayed: boolean;
  /** The upstream request under way (it keeps the timeouts.responseMs deadline); replaced by the replay after a 401. */
  proxyReq: UpstreamCall<Exchange> | undefined;
  /** The upstream's status for the answer passed on to the caller (for the access log). */
  upstreamStatus: number | undefined;
  /** The request's spans; undefined while tracing is off. */
  readonly trace: RequestTrace | undefined;
  /** The DPoP nonce the last upstream proof carried (a use_dpop_nonce 401 is replayed only for a newer one). */
  dpopNonce: string | undefined;
  /** A WebSocket handshake's socket: the request is forwarded as an upgrade, and a 101 makes it a tunnel. */
  readonly upgrade: Duplex | undefined;
}

const EXCHANGE = Symbol('tokengate.exchange');
/** Connections on which a request was refused as malformed (#refuse): they close after its answer. */
const REFUSED_CONNECTIONS = new WeakSet<Socket>();
type TrackedResponse = ServerResponse & { [EXCHANGE]?: Exchange };

const NETWORK_UNAVAILABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** undici's code for the connect time-out, and the one for timeouts.responseMs. */
const TIMED_OUT = new Set(['UND_ERR_CONNECT_TIMEOUT', HEAD_TIMEOUT_CODE]);

/**
 * Request shapes whose body length or host two HTTP parsers could read differently (request
 * smuggling). Node's parser refuses most of them; these are the ones it lets through.
 */
function framingProblem(req: IncomingMessage): string | undefined {
  const transferEncoding = req.headers['transfer-encoding'];
  if (transferEncoding !== undefined) {
    // RFC 9112 §6.1: a message with both is a smuggling attempt.
    if (req.headers['content-length'] !== undefined) return 'a request must not carry both Content-Length and Transfer-Encoding';
    // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; the framing must be treated as faulty.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return 'an HTTP/1.0 request must not carry Transfer-Encoding';
    // RFC 9112 §6.3: without chunked as the final (here: only) coding the body length is unknowable.
    if (transferEncoding.trim().toLowerCase() !== 'chunked') return 'chunked is the only transfer coding accepted on a request';
  }
  // RFC 9112 §3.2: more than one Host line is a 400; Node would quietly keep the first.
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host' && ++hosts > 1) return 'a request must carry exactly one Host header';
  }
  return undefined;
}

/**
 * RFC 9112 §6.3: without Content-Length or Transfer-Encoding a request has no body, whatever its
 * method; nor has one with a length of 0, `0` or `00` (Node's parser has checked it is digits).
 */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0);
}

function withoutContentLength(headers: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() !== 'content-length') out.push(headers[i]!, headers[i + 1]!);
  return out;
}

/**
 * Forwards through undici pools (upstream-call.ts, decision 0005). Node's own `http.request` did
 * before, and http-proxy before that (docs/performance.md says what each cost).
 */
export class ProxyHandler {
  #runtime: Runtime;
  readonly #provider: TokenProvider;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #unmatchedCounts: RequestCounts;
  readonly #unmatchedDuration: Histogram.Internal<'route'>;
  readonly #unmatchedLog: AccessLog;
  readonly #proto: 'http' | 'https';
  readonly #tracing: Tracing | undefined;
  readonly #upgrades = new Upgrades();

  constructor(
    runtime: Runtime,
    provider: TokenProvider,
    metrics: Metrics,
    log: Logger,
    proto: 'http' | 'https' = 'http',
    tracing: Tracing | undefined = undefined,
  ) {
    this.#tracing = tracing;
    this.#runtime = runtime;
    this.#provider = provider;
    this.#metrics = metrics;
    this.#log = log;
    this.#proto = proto;
    this.#unmatchedDuration = metrics.requestDuration.labels({ route: UNMATCHED });
    this.#unmatchedCounts = metrics.requestCounts(UNMATCHED);
    this.#unmatchedLog = new AccessLog(log, UNMATCHED);
  }

  /** Swaps in a reloaded config; requests already started finish on the one they began with. */
  setRuntime(runtime: Runtime): void {
    this.#runtime = runtime;
  }

  get runtime(): Runtime {
    return this.#runtime;
  }

  /**
   * The proxy listener's WebSocket handshakes (server.ts passes on no other upgrade): the same
   * pipeline as any request, on a response object of the handshake's own socket.
   */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.#upgrades.track(socket);
    // Bytes the caller sent past the head wait on the socket until the tunnel pipes them upstream.
    if (head.length > 0) socket.unshift(head);
    this.handle(req, responseOnSocket(req, socket), socket);
  };

  /** Ends the upgraded connections still open: the drain's deadline has passed. */
  closeUpgrades(): void {
    this.#upgrades.closeAll();
  }

  /**
   * Open WebSocket connections by route: every route that accepts them now (0 when none is open),
   * and routes a reload removed whose connections are still open.
   */
  openWebSockets(): Map<string, number> {
    const open = new Map<string, number>();
    for (const route of this.#runtime.config.routes) if (route.websocket) open.set(route.name, 0);
    for (const [route, count] of this.#upgrades.open) open.set(route, count);
    return open;
  }

  /** `upgrade` is set for a WebSocket handshake (see upgrade above); Node calls a request listener without it. */
  readonly handle = (req: IncomingMessage, res: ServerResponse, upgrade?: Duplex): void => {
    // A request pipelined behind one refused as malformed is read by the same parser that could not
    // make sense of the one before: never forwarded, never answered; the connection closes after
    // the refusal's answer (Connection: close).
    if (REFUSED_CONNECTIONS.has(req.socket)) return void upgrade?.destroy();
    const started = performance.now();
    const runtime = this.#runtime;
    // Every answer carries it: the upstream's through callerResponseHeaders, ours through writeProblem.
    const requestId = acceptRequestId(req.headers['x-request-id']) ?? randomUUID();
    const method = req.method ?? 'GET';
    const trace = this.#tracing?.startRequest(req, method, this.#proto, requestId);

    const framing = framingProblem(req);
    if (framing !== undefined) return this.#refuse(req, res, started, method, requestId, framing, trace);
    let target = req.url ?? '/';
    let authority = req.headers.host;
    if (target.charCodeAt(0) !== 47 /* / */) {
      // RFC 9112 §3.2.2 absolute-form: its authority replaces Host (for matching and X-Forwarded-Host);
      // it is forwarded only where a route says.
      const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
      if (absolute === null) return this.#refuse(req, res, started, method, requestId, 'unsupported request target', trace);
      authority = absolute[1];
      target = absolute[2] === '' || absolute[2]!.startsWith('?') ? `/${absolute[2]}` : absolute[2]!;
    }
    const host = hostName(authority);
    const { path: rawPath, query } = splitTarget(target);
    const path = normalizePath(rawPath);
    if (path === undefined)
      return this.#refuse(req, res, started, method, requestId, 'the request path is ambiguous or climbs above the root', trace);

    const matched = runtime.router.match(method, host, path);
    if (matched === undefined) {
      this.#finishUnmatched(res, started, method, requestId, trace);
      // A caller the top-level policy refuses learns nothing, not even which paths are routed.
      if (runtime.access !== undefined && this.#denied(req, res, runtime.access, UNMATCHED, requestId)) return;
      return writeProblem(
        res,
        new GatewayError('ROUTE_NOT_FOUND', { detail: `no route matches ${method} ${path.slice(0, 200)}` }),
        requestId,
      );
    }
    const route = matched.data;
    trace?.route(route.name, route.route.match.pathPrefix);
    const exchange: Exchange = {
      handler: this,
      runtime,
      route,
      req,
      res,
      method,
      requestId,
      started,
      authority,
      token: undefined,
      body: undefined,
      replayable: false,
      replayed: false,
      proxyReq: undefined,
      upstreamStatus: undefined,
      trace,
      dpopNonce: undefined,
      upgrade,
    };
    (res as TrackedResponse)[EXCHANGE] = exchange;
    res.once('finish', ProxyHandler.#onFinish);

    if (route.access !== undefined && this.#denied(req, res, route.access, route.name, requestId)) return;
    if (upgrade !== undefined && !route.route.websocket) {
      const refusal = new GatewayError('BAD_REQUEST', { detail: 'this route does not accept WebSocket upgrades' });
      return writeProblem(res, refusal, requestId, { route: route.name });
    }
    // RFC 9110 §9.3.8: a client must not send credentials in a TRACE request, whose final recipient
    // echoes the request back. On a route that injects a token, the echo would hand the caller the token.
    if (method === 'TRACE' && route.key !== undefined) {
      const refusal = new GatewayError('BAD_REQUEST', {
        detail: 'TRACE is not sent on a route that injects credentials (RFC 9110 §9.3.8)',
      });
      return writeProblem(res, refusal, requestId, { route: route.name });
    }
    req.url = upstreamPath(route.route, route.basePath, path) + query;
    res.on('close', ProxyHandler.#onClose);

    if (route.key === undefined) return this.#prepareBody(exchange);
    const token = this.#provider.peek(route.key);
    if (token !== undefined) {
      route.hits!.inc();
      route.stats!.cacheHits++;
      trace?.cache('hit');
      exchange.token = token;
      return this.#prepareBody(exchange);
    }
    route.misses!.inc();
    route.stats!.cacheMisses++;
    trace?.cache('miss');
    this.#obtainToken(exchange, () => this.#prepareBody(exchange));
  };

  /** Waits for the provider's token, then goes on with `next`; a failure answers the caller. */
  #obtainToken(exchange: Exchange, next: () => void): void {
    this.#provider
      .get(exchange.route.key!, { route: exchange.route.name, requestId: exchange.requestId, trace: exchange.trace })
      .then(
        (fresh) => {
          exchange.token = fresh;
          next();
        },
        (error: unknown) => this.#tokenFailed(exchange, error),
      )
      // A throw in the next step must not become an unhandled rejection (on Node 20 that ends the process).
      .catch((error: unknown) => this.#internalFailure(exchange, error));
  }

  /** A fault of the gateway's own while handling a request: logged, and the caller answered or cut off. */
  #internalFailure(exchange: Exchange, error: unknown): void {
    this.#log.error({ event: 'request_failed', err: error, route: exchange.route.name, requestId: exchange.requestId }, 'request failed');
    if (exchange.res.destroyed) return;
    writeProblem(
      exchange.res,
      new GatewayError('UPSTREAM_UNAVAILABLE', { detail: 'the gateway could not forward this request' }),
      exchange.requestId,
      {
        route: exchange.route.name,
      },
    );
  }

  /**
   * A request may be replayed after a 401 only if its body can be sent again: none at all, or
   * one small enough to have been buffered (route.replayBodyLimit). Larger bodies stream.
   */
  #prepareBody(exchange: Exchange): void {
    const { req } = exchange;
    const { route } = exchange.route;
    if (route.replayOn401 === 'off' || exchange.route.key === undefined) return this.#forward(exchange);
    if (!hasBody(req)) {
      exchange.replayable = true;
      return this.#forward(exchange);
    }
    if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > route.replayBodyLimit)
      return this.#forward(exchange);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      exchange.body = Buffer.concat(chunks);
      exchange.replayable = true;
      this.#forward(exchange);
    });
  }

  #forward(exchange: Exchange): void {
    const { req, res, route } = exchange;
    if (res.destroyed) return;
    const { token } = exchange;
    // The token aged past its usable life while the body was buffered: never send it expired.
    if (token !== undefined && Date.now() >= token.usableUntil) return this.#obtainToken(exchange, () => this.#forward(exchange));
    // The body: buffered for a replay, streamed, or none (a replayed request without a buffer had none).
    const body = exchange.body ?? (exchange.replayed || !hasBody(req) ? null : req);
    const bodyless = body === null;
    const headers = upstreamRequestHeaders(req.headers, req.rawHeaders, {
      upstreamHost: route.upstreamHost,
      requestId: exchange.requestId,
      remoteAddress: req.socket.remoteAddress,
      proto: this.#proto,
      host: exchange.authority,
      accessHeaders: exchange.runtime.accessHeaders,
      authorization: token === undefined ? undefined : `${route.dpop === undefined ? 'Bearer' : 'DPoP'} ${token.accessToken}`,
      bodyless,
    });
    if (route.dpop !== undefined && token !== undefined) headers.push('dpop', this.#dpopProof(exchange, route.dpop, token.accessToken));
    exchange.trace?.upstreamStart(headers, route.upstream, req.url!);
    const call = new UpstreamCall(res, exchange, ProxyHandler.#upstreamEvents);
    exchange.proxyReq = call;
    route.upstreamInFlight.value++;
    call.send(route.upstream.pool, {
      method: exchange.method,
      path: req.url!,
      headers,
      body,
      headersTimeoutMs: route.route.timeouts.responseMs,
      upgrade: exchange.upgrade === undefined ? undefined : req.headers.upgrade,
    });
  }

  /** RFC 9449 §7.1: a fresh proof per request, `htu` without the query, `ath` binding it to the token. */
  #dpopProof(exchange: Exchange, dpop: RouteDpop, accessToken: string): string {
    if (dpop.athOf?.token !== accessToken) dpop.athOf = { token: accessToken, ath: accessTokenHash(accessToken) };
    const url = exchange.req.url!;
    const query = url.indexOf('?');
    exchange.dpopNonce = dpop.signer.nonces.get(dpop.origin);
    return dpop.signer.proof(exchange.method, dpop.origin, query === -1 ? url : url.slice(0, query), dpop.athOf.ath);
  }

  static readonly #upstreamEvents: UpstreamCallEvents<Exchange> = {
    headers: (exchange, call, status, reason, rawHeaders) =>
      exchange.proxyReq === call && exchange.handler.#answer(exchange, call, status, reason, rawHeaders),
    // A request a 401 replay has replaced no longer speaks for the caller.
    failed: (exchange, call, error) => {
      if (exchange.proxyReq === call) exchange.handler.#upstreamFailed(exchange, error);
    },
    settled: (exchange) => {
      exchange.route.upstreamInFlight.value--;
    },
    upgraded: (exchange, call, rawHeaders, socket) => {
      if (exchange.proxyReq === call) exchange.handler.#upgraded(exchange, rawHeaders, call.headers, socket);
      else socket.destroy();
    },
  };

  /**
   * The upstream switched protocols: the caller gets the 101 and the two sockets become a tunnel
   * (RFC 6455 §4.2.2). The handshake is counted and logged now, with status 101; the tunnel's
   * open count is tokengate_websocket_connections.
   */
  #upgraded(exchange: Exchange, rawHeaders: string[], headers: IncomingHttpHeaders, upstream: Duplex): void {
    const { res, route } = exchange;
    const caller = exchange.upgrade!;
    exchange.trace?.upstreamResponse(101);
    route.dpop?.signer.nonces.remember(route.dpop.origin, headers['dpop-nonce']);
    // The caller left while the upstream answered: #onClose has counted it.
    if (res.destroyed || caller.destroyed) return void upstream.destroy();
    exchange.proxyReq = undefined;
    exchange.upstreamStatus = 101;
    // From here on the socket is the tunnel's: the response object neither writes nor closes it.
    res.off('close', ProxyHandler.#onClose);
    res.detachSocket(caller as Socket);
    caller.write(switchingProtocolsHead(rawHeaders, exchange.requestId), 'latin1');
    ProxyHandler.#record(exchange, 101);
    this.#upgrades.tunnel(caller, upstream, route.name);
  }

  /**
   * The upstream's final head (UpstreamCall has refused a status outside 100..599 and passed over
   * interim ones): passed on, true, and its body follows; or false, a 401 replayed instead.
   */
  #answer(exchange: Exchange, call: UpstreamCall<Exchange>, status: number, reason: string, rawHeaders: string[]): boolean {
    const { res, route } = exchange;
    exchange.trace?.upstreamResponse(status);
    if (route.dpop !== undefined && this.#dpopAnswer(exchange, route.dpop, call.headers, status)) return false;
    if (status === 401 && route.key !== undefined && exchange.token !== undefined) {
      if (exchange.replayed) {
        this.#metrics.authFailures.inc({ route: route.name, connection: route.key.connection, reason: 'upstream_unauthorized' });
      } else if (this.#wantsReplay(route.route, call.headers)) {
        if (exchange.replayable) {
          this.#replay(exchange);
          return false;
        }
        // A streamed body cannot be sent again, but the next caller need not meet the same 401.
        this.#provider.invalidate(route.key, exchange.token.accessToken);
      }
    }
    if (res.destroyed) return false;
    try {
      // Nothing was set on `res` before: writeHead takes the list as it is, no header copied twice.
      const list = callerResponseHeaders(rawHeaders, exchange.requestId);
      // RFC 9110 §8.6: a 204 carries no Content-Length (a 304's describes the representation it stands for).
      // RFC 9112 §4: the upstream's reason phrase goes on as it came (nginx does the same); an empty one
      // becomes Node's standard phrase for the status.
      if (reason !== '') res.statusMessage = reason;
      res.writeHead(status, status === 204 ? withoutContentLength(list) : list);
    } catch (error) {
      // An answer Node refuses to pass on: the upstream is broken, not the gateway. Our 502 goes out
      // with its own reason phrase, not the upstream's.
      res.statusMessage = '';
      exchange.proxyReq?.cancel();
      this.#upstreamFailed(exchange, error as Error);
      return false;
    }
    // A 204 or 304 ends at its head (RFC 9110 §15.3.5, §15.4.5), and so it does for undici's parser:
    // bytes an upstream sends after it are garbage on that socket, never part of this answer. So does
    // an answer to HEAD (§9.3.2). The caller gets it now, whole: undici may yet fail the exchange (a 204
    // whose Content-Length promised bytes), and a failure after this point cuts nothing short.
    exchange.upstreamStatus = status;
    if (status === 204 || status === 304 || exchange.method === 'HEAD') res.end();
    return true;
  }

  /** RFC 6750 §3.1: `error="invalid_token"` says the token itself is the problem (RFC 9449 §7.1: also under DPoP). */
  #wantsReplay(route: Route, headers: IncomingHttpHeaders): boolean {
    if (route.replayOn401 !== 'invalid_token') return route.replayOn401 === 'any';
    const value: string | string[] | undefined = headers['www-authenticate'];
    if (dpopChallengeError(value) === 'invalid_token') return true;
    const challenge = Array.isArray(value) ? value.join(', ') : value;
    return typeof challenge === 'string' && /^\s*bearer\b/i.test(challenge) && /error\s*=\s*"?invalid_token"?/i.test(challenge);
  }

  /**
   * RFC 9449 §9: the upstream's nonce, from any answer, is used from the next proof on. A 401 asking
   * for it (use_dpop_nonce) is replayed once with the new nonce when the request can be replayed;
   * otherwise it reaches the caller. Returns true when the answer was taken over by a replay.
   */
  #dpopAnswer(exchange: Exchange, dpop: RouteDpop, headers: IncomingHttpHeaders, status: number): boolean {
    dpop.signer.nonces.remember(dpop.origin, headers['dpop-nonce']);
    if (status !== 401 || exchange.token === undefined) return false;
    const error = dpopChallengeError(headers['www-authenticate']);
    const connection = exchange.route.key!.connection;
    if (error === 'invalid_dpop_proof') this.#metrics.dpopProofFailures.inc({ connection });
    if (error !== 'use_dpop_nonce' || exchange.replayed || !exchange.replayable) return false;
    if (dpop.signer.nonces.get(dpop.origin) === exchange.dpopNonce) return false;
    this.#metrics.dpopNonceRetries.inc({ connection, server: 'upstream' });
    // As #replay: this attempt's CLIENT span ends here (its body is dropped); the replay gets its own.
    exchange.trace?.upstreamEnd();
    exchange.replayed = true;
    exchange.proxyReq = undefined;
    this.#forward(exchange);
    return true;
  }

  #replay(exchange: Exchange): void {
    exchange.trace?.upstreamEnd();
    exchange.replayed = true;
    exchange.proxyReq = undefined;
    const key = exchange.route.key!;
    this.#provider.invalidate(key, exchange.token!.accessToken);
    this.#log.info(
      { event: 'token_replay', route: exchange.route.name, connection: key.connection, requestId: exchange.requestId },
      'upstream refused the token; refetching and replaying once',
    );
    this.#obtainToken(exchange, () => this.#forward(exchange));
  }

  #upstreamFailed(exchange: Exchange, error: Error): void {
    const { req, res, route } = exchange;
    const code = (error as NodeJS.ErrnoException).code ?? '';
    exchange.trace?.upstreamFailed(TIMED_OUT.has(code) ? 'timeout' : code || error.name);
    // An answer already complete (a 204 before its garbage, say) is not cut short afterwards. undici
    // lets go of a request body it has sent (req.socket is then null): only a closed socket means the caller left.
    if (res.destroyed || res.writableEnded || req.socket?.destroyed === true) return;
    const reason = TIMED_OUT.has(code)
      ? 'timeout'
      : NETWORK_UNAVAILABLE.has(code) || code.startsWith('ERR_TLS') || code.includes('CERT')
        ? 'unavailable'
        : 'reset';
    this.#metrics.upstreamErrors.inc({ route: route.name, reason });
    this.#log.warn(
      { event: 'upstream_error', route: route.name, reason, errorCode: code, requestId: exchange.requestId },
      `upstream of ${route.name} failed: ${reason}`,
    );
    const gatewayError =
      reason === 'timeout'
        ? new GatewayError('UPSTREAM_TIMEOUT', { detail: 'the upstream did not answer in time' })
        : new GatewayError('UPSTREAM_UNAVAILABLE', {
            detail:
              code === UNUSABLE_ANSWER_CODE
                ? 'the upstream sent an answer that cannot be passed on'
                : reason === 'reset'
                  ? 'the upstream reset the connection'
                  : `cannot reach the upstream (${code || 'error'})`,
          });
    exchange.trace?.failed(gatewayError.code);
    writeProblem(res, gatewayError, exchange.requestId, { route: route.name });
  }

  #tokenFailed(exchange: Exchange, error: unknown): void {
    const connection = exchange.route.key!.connection;
    const gatewayError =
      error instanceof GatewayError
        ? error
        : new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'network', { detail: 'the token could not be obtained', cause: error });
    if (!(error instanceof GatewayError)) this.#log.error({ err: error, connection }, 'unexpected error while obtaining a token');
    const reason = gatewayError instanceof TokenError ? gatewayError.reason : 'network';
    this.#metrics.authFailures.inc({ route: exchange.route.name, connection, reason });
    exchange.trace?.failed(gatewayError.code);
    writeProblem(exchange.res, gatewayError, exchange.requestId, { route: exchange.route.name, connection });
  }

  /** Applies an access policy: answers ACCESS_DENIED and returns true when the caller fails it. */
  #denied(req: IncomingMessage, res: ServerResponse, access: AccessChecker, route: string, requestId: string): boolean {
    const denial = access.check(req.socket.remoteAddress, req.headers[access.header]);
    if (denial === undefined) return false;
    this.#metrics.accessDenied.inc({ route, reason: denial });
    const detail =
      denial === 'address'
        ? `this address may not use ${route === UNMATCHED ? 'the gateway' : 'this route'}`
        : `a valid key is required in ${access.header}`;
    writeProblem(
      res,
      new GatewayError('ACCESS_DENIED', { status: denial === 'address' ? 403 : 401, detail }),
      requestId,
      route === UNMATCHED ? {} : { route },
    );
    return true;
  }

  #refuse(
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    method: string,
    requestId: string,
    detail: string,
    trace: RequestTrace | undefined,
  ): void {
    REFUSED_CONNECTIONS.add(req.socket);
    this.#finishUnmatched(res, started, method, requestId, trace);
    res.setHeader('connection', 'close');
    writeProblem(res, new GatewayError('BAD_REQUEST', { detail }), requestId);
  }

  #finishUnmatched(res: ServerResponse, started: number, method: string, requestId: string, trace: RequestTrace | undefined): void {
    res.once('finish', () => {
      trace?.end(res.statusCode);
      const seconds = (performance.now() - started) / 1000;
      this.#unmatchedDuration.observe(seconds);
      this.#unmatchedCounts.count(method, res.statusCode);
      this.#accessLog(this.#runtime, this.#unmatchedLog, method, res.statusCode, seconds, requestId, undefined);
    });
  }

  /** A matched request's answer is complete: its duration, its count and its access line. */
  static readonly #onFinish = function (this: TrackedResponse): void {
    ProxyHandler.#record(this[EXCHANGE]!, this.statusCode);
  };

  /**
   * The caller's connection closed before the answer was complete: the caller hung up, or the
   * gateway cut short an answer whose upstream failed mid-body. The upstream request is aborted,
   * and the request is still counted and logged: with the status already sent, or with 499
   * (nginx's "client closed request") when none was.
   */
  static readonly #onClose = function (this: TrackedResponse): void {
    if (this.writableFinished) return;
    const exchange = this[EXCHANGE]!;
    exchange.proxyReq?.cancel();
    ProxyHandler.#record(exchange, this.headersSent ? this.statusCode : CLIENT_CLOSED_REQUEST);
  };

  static #record(exchange: Exchange, status: number): void {
    const { handler, route } = exchange;
    const seconds = (performance.now() - exchange.started) / 1000;
    route.duration.observe(seconds);
    route.codes.count(exchange.method, status);
    handler.#accessLog(exchange.runtime, route.accessLog, exchange.method, status, seconds, exchange.requestId, exchange.upstreamStatus);
    exchange.trace?.end(status);
  }

  /**
   * One line per request at `logging.accessLog`. No path, query or headers: they can carry
   * credentials and unbounded text. The line is only built when the level is enabled.
   */
  #accessLog(
    runtime: Runtime,
    log: AccessLog,
    method: string,
    status: number,
    seconds: number,
    requestId: string,
    upstreamStatus: number | undefined,
  ): void {
    const level = runtime.config.logging.accessLog;
    if (level !== 'off') log.write(level, method, status, Math.round(seconds * 1_000_000) / 1000, requestId, upstreamStatus);
  }
}
