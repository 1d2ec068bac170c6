/**
 * A matched request's way upstream and back: its token (cache or provider), its body (streamed,
 * or buffered when replay-policy.ts may send it twice), the upstream call (upstream-call.ts), and
 * then the answer passed on, a 401 replayed, a 101 made a tunnel, or a failure translated
 * (upstream-failure.ts). Recording is exchange-record.ts's, on the caller's response.
 *
 * Forwards through tokengate's own HTTP/1.1 client (http1/, decision 0008); undici pools did before,
 * node's own `http.request` before that, and http-proxy first (docs/performance.md says what each cost).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GatewayError, TokenError } from '../errors/gateway.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { dpopChallengeError } from '../tokens/dpop/nonces.js';
import type { TokenProvider } from '../tokens/provider.js';
import type { CachedToken, TokenKey } from '../tokens/types.js';
import type { RouteDpop } from './runtime.js';
import { releaseCallerClose, type ExchangeRecorder, type RecordedExchange } from './exchange-record.js';
import { dpopProof, rememberNonce } from './dpop.js';
import { hasBody } from './framing.js';
import { upstreamRequestHeaders } from './headers.js';
import { endsAtHead, writeAnswerHead } from './answer-head.js';
import { writeProblem } from '../errors/problem.js';
import { bodyPlan, unauthorizedOutcome, wantsNonceReplay, type Attempt } from './replay-policy.js';
import { switchingProtocolsHead, type Upgrades } from './upgrade.js';
import { UpstreamCall, type UpstreamCallEvents } from './upstream-call.js';
import { failureCode, tracedFailure, upstreamFailureError, upstreamFailureReason } from './upstream-failure.js';

/**
 * Per-request state, one plain object per matched request, which the recording listeners (on the
 * caller's response, exchange-record.ts) and the upstream call's events (#upstreamEvents) are
 * handed: they are shared functions, not closures made per request (docs/performance.md).
 */
export interface Exchange extends RecordedExchange, Attempt {
  readonly forwarder: Forwarder;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The Host (or absolute-form authority) the caller sent. */
  readonly authority: string | undefined;
  token: CachedToken | undefined;
  /** The buffered request body, when the request may be replayed after a 401. */
  body: Buffer | undefined;
  replayable: boolean;
  replayed: boolean;
  /** The upstream request under way (it keeps the timeouts.responseMs deadline); replaced by the replay after a 401. */
  proxyReq: UpstreamCall<Exchange> | undefined;
  upstreamStatus: number | undefined;
  /** The DPoP nonce the last upstream proof carried (a use_dpop_nonce 401 is replayed only for a newer one). */
  dpopNonce: string | undefined;
  /** A WebSocket handshake's socket: the request is forwarded as an upgrade, and a 101 makes it a tunnel. */
  readonly upgrade: Duplex | undefined;
}

/** One per proxy listener (ProxyHandler makes it); holds nothing per request. */
export class Forwarder {
  readonly #provider: TokenProvider;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #proto: 'http' | 'https';
  readonly #recorder: ExchangeRecorder;
  readonly #upgrades: Upgrades;

  constructor(
    provider: TokenProvider,
    metrics: Metrics,
    log: Logger,
    proto: 'http' | 'https',
    recorder: ExchangeRecorder,
    upgrades: Upgrades,
  ) {
    this.#provider = provider;
    this.#metrics = metrics;
    this.#log = log;
    this.#proto = proto;
    this.#recorder = recorder;
    this.#upgrades = upgrades;
  }

  /** A matched request that passed every check: its token, from the cache or the provider, then its body and the upstream. */
  start(exchange: Exchange): void {
    const { route, trace } = exchange;
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
  }

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
    const { res, route, requestId } = exchange;
    this.#log.error({ event: 'request_failed', err: error, route: route.name, requestId }, 'request failed');
    if (res.destroyed) return;
    const failure = new GatewayError('UPSTREAM_UNAVAILABLE', { detail: 'the gateway could not forward this request' });
    writeProblem(res, failure, requestId, { route: route.name });
  }

  /** Sends the request once its body is ready to go (replay-policy.ts says how it goes). */
  #prepareBody(exchange: Exchange): void {
    const { req } = exchange;
    const plan = bodyPlan(exchange.route.route, exchange.route.key !== undefined, req);
    if (plan === 'stream') return this.#forward(exchange);
    if (plan === 'replayable') {
      exchange.replayable = true;
      return this.#forward(exchange);
    }
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
    if (route.dpop !== undefined && token !== undefined)
      headers.push('dpop', dpopProof(route.dpop, exchange, exchange.method, req.url!, token.accessToken));
    exchange.trace?.upstreamStart(headers, route.upstream, req.url!);
    const call = new UpstreamCall(res, exchange, Forwarder.#upstreamEvents);
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

  static readonly #upstreamEvents: UpstreamCallEvents<Exchange> = {
    headers: (exchange, call, status, reason, rawHeaders) =>
      exchange.proxyReq === call && exchange.forwarder.#answer(exchange, call, status, reason, rawHeaders),
    // A request a 401 replay has replaced no longer speaks for the caller.
    failed: (exchange, call, error) => {
      if (exchange.proxyReq === call) exchange.forwarder.#upstreamFailed(exchange, error);
    },
    settled: (exchange) => {
      exchange.route.upstreamInFlight.value--;
    },
    upgraded: (exchange, call, rawHeaders, socket) => {
      if (exchange.proxyReq === call) exchange.forwarder.#upgraded(exchange, rawHeaders, call.headers, socket);
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
    if (route.dpop !== undefined) rememberNonce(route.dpop, headers);
    // The caller left while the upstream answered: its 'close' has recorded it.
    if (res.destroyed || caller.destroyed) return void upstream.destroy();
    exchange.proxyReq = undefined;
    exchange.upstreamStatus = 101;
    // From here on the socket is the tunnel's: the response object neither writes nor closes it.
    releaseCallerClose(res);
    res.detachSocket(caller as Socket);
    caller.write(switchingProtocolsHead(rawHeaders, exchange.requestId), 'latin1');
    this.#recorder.record(exchange, 101);
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
    const { key } = route;
    if (
      status === 401 &&
      key !== undefined &&
      exchange.token !== undefined &&
      this.#unauthorized(exchange, key, exchange.token, call.headers)
    )
      return false;
    if (res.destroyed) return false;
    try {
      writeAnswerHead(res, status, reason, rawHeaders, exchange.requestId);
    } catch (error) {
      // Our 502 goes out with its own reason phrase, not the upstream's.
      res.statusMessage = '';
      exchange.proxyReq?.cancel();
      this.#upstreamFailed(exchange, error as Error);
      return false;
    }
    // The caller gets an answer that ends at its head now, whole: the client may yet fail the exchange (a
    // 204 whose Content-Length promised bytes), and a failure after this point cuts nothing short.
    exchange.upstreamStatus = status;
    if (endsAtHead(status, exchange.method)) res.end();
    return true;
  }

  /** A 401 to a request that carried a token, as replay-policy.ts decides: true when a replay took it over. */
  #unauthorized(exchange: Exchange, key: TokenKey, token: CachedToken, headers: IncomingHttpHeaders): boolean {
    const { route } = exchange;
    const outcome = unauthorizedOutcome(route.route, headers, exchange);
    if (outcome === 'replay') this.#replay(exchange);
    else if (outcome === 'invalidate') this.#provider.invalidate(key, token.accessToken);
    else if (outcome === 'refused_again')
      this.#metrics.authFailures.inc({ route: route.name, connection: key.connection, reason: 'upstream_unauthorized' });
    return outcome === 'replay';
  }

  /**
   * RFC 9449 §9: the upstream's nonce, from any answer, is used from the next proof on; a 401
   * asking for it may be replayed (replay-policy.ts). True when a replay took the answer over.
   */
  #dpopAnswer(exchange: Exchange, dpop: RouteDpop, headers: IncomingHttpHeaders, status: number): boolean {
    rememberNonce(dpop, headers);
    if (status !== 401 || exchange.token === undefined) return false;
    const challenge = dpopChallengeError(headers['www-authenticate']);
    const connection = exchange.route.key!.connection;
    if (challenge === 'invalid_dpop_proof') this.#metrics.dpopProofFailures.inc({ connection });
    if (!wantsNonceReplay(challenge, exchange, dpop)) return false;
    this.#metrics.dpopNonceRetries.inc({ connection, server: 'upstream' });
    // As #replay: this attempt's CLIENT span ends here (its body is dropped); the replay gets its own.
    exchange.trace?.upstreamEnd();
    exchange.replayed = true;
    exchange.proxyReq = undefined;
    this.#forward(exchange);
    return true;
  }

  /** The upstream refused the token: it is dropped from the cache, and the request sent once more with a fresh one. */
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
    const code = failureCode(error);
    exchange.trace?.upstreamFailed(tracedFailure(code, error));
    // An answer already complete (a 204 before its garbage, say) is not cut short afterwards.
    // req.socket can be null by now: only a closed socket means the caller left.
    if (res.destroyed || res.writableEnded || req.socket?.destroyed === true) return;
    const reason = upstreamFailureReason(code);
    this.#metrics.upstreamErrors.inc({ route: route.name, reason });
    this.#log.warn(
      { event: 'upstream_error', route: route.name, reason, errorCode: code, requestId: exchange.requestId },
      `upstream of ${route.name} failed: ${reason}`,
    );
    const gatewayError = upstreamFailureError(reason, code);
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
}
