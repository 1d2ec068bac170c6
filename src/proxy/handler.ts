/**
 * The proxy listener's request handler: a composition of the proxy's pieces, in the order a
 * request meets them. framing.ts (refuse what two parsers could read differently) → routing/target.ts
 * (authority, normalised path, query) → the router → the access policy → the route's own refusals
 * → forwarder.ts (token, body, DPoP, upstream call, answer, replay, failure); exchange-record.ts records
 * every request when its answer is complete. Everything per route (target, socket pool, metric
 * children, token key) is built once per config in runtime/route-table.ts; the per-request path
 * allocates only what each request really owns.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors/gateway.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { upstreamPath } from '../routing/router.js';
import { parseTarget, TARGET_REFUSAL_DETAIL } from '../routing/target.js';
import type { TokenProvider } from '../tokens/provider.js';
import type { Tracing } from '../tracing/tracing.js';
import type { AccessChecker } from './access.js';
import type { Runtime } from './runtime.js';
import {
  cancelOnCallerClose,
  ExchangeRecorder,
  trackExchange,
  trackUnmatched,
  UNMATCHED,
  type UnmatchedRequest,
} from './exchange-record.js';
import { framingProblem } from './framing.js';
import { Forwarder, type Exchange } from './forwarder.js';
import { acceptRequestId } from './headers.js';
import { writeProblem } from '../errors/problem.js';
import { responseOnSocket, Upgrades } from './upgrade.js';

export type { Runtime } from './runtime.js';

/** Connections on which a request was refused as malformed (#refuse): they close after its answer. */
const REFUSED_CONNECTIONS = new WeakSet<Socket>();

/** One per proxy listener (gateway/listeners.ts): `handle` serves its requests, `upgrade` its WebSocket handshakes. */
export class ProxyHandler {
  #runtime: Runtime;
  readonly #metrics: Metrics;
  readonly #recorder: ExchangeRecorder;
  readonly #forwarder: Forwarder;
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
    this.#metrics = metrics;
    this.#proto = proto;
    this.#recorder = new ExchangeRecorder(metrics, log);
    this.#forwarder = new Forwarder(provider, metrics, log, proto, this.#recorder, this.#upgrades);
  }

  /** Swaps in a reloaded config; requests already started finish on the one they began with. */
  setRuntime(runtime: Runtime): void {
    this.#runtime = runtime;
  }

  get runtime(): Runtime {
    return this.#runtime;
  }

  /**
   * The proxy listener's WebSocket handshakes (gateway/listeners.ts passes on no other upgrade): the same
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
    if (framing !== undefined)
      return this.#refuse(req, res, framing, { recorder: this.#recorder, runtime, method, requestId, started, trace });
    const target = parseTarget(req.url ?? '/', req.headers.host);
    if (typeof target === 'string') {
      const refused = { recorder: this.#recorder, runtime, method, requestId, started, trace };
      return this.#refuse(req, res, TARGET_REFUSAL_DETAIL[target], refused);
    }
    const { path } = target;
    const matched = runtime.router.match(method, target.host, path);
    if (matched === undefined) {
      trackUnmatched(res, { recorder: this.#recorder, runtime, method, requestId, started, trace });
      // A caller the top-level policy refuses learns nothing, not even which paths are routed.
      if (runtime.access !== undefined && this.#denied(req, res, runtime.access, UNMATCHED, requestId)) return;
      const detail = `no route matches ${method} ${path.slice(0, 200)}`;
      return writeProblem(res, new GatewayError('ROUTE_NOT_FOUND', { detail }), requestId);
    }
    const route = matched.data;
    trace?.route(route.name, route.route.match.pathPrefix);
    const exchange: Exchange = {
      forwarder: this.#forwarder,
      recorder: this.#recorder,
      runtime,
      route,
      req,
      res,
      method,
      requestId,
      started,
      authority: target.authority,
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
    trackExchange(res, exchange);

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
    req.url = upstreamPath(route.route, route.basePath, path) + target.query;
    cancelOnCallerClose(res);
    this.#forwarder.start(exchange);
  };

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

  /** A request refused as malformed (framing.ts, routing/target.ts): answered 400, and its connection closed after. */
  #refuse(req: IncomingMessage, res: ServerResponse, detail: string, request: UnmatchedRequest): void {
    REFUSED_CONNECTIONS.add(req.socket);
    trackUnmatched(res, request);
    res.setHeader('connection', 'close');
    writeProblem(res, new GatewayError('BAD_REQUEST', { detail }), request.requestId);
  }
}
