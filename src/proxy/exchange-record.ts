/**
 * Every request the proxy listener reads is recorded once, when its answer is complete or its
 * caller has gone: its duration, its count by method and status, its access line, its trace's end.
 *
 * Why the state hangs on the response under a Symbol: a closure per request (`res.once('finish',
 * () => …)`) would cost a function object and its context on every request. Instead the request's
 * state is one plain object set on `res` under a Symbol, and the listeners are shared module-level
 * functions that find it through `this`. The upstream call's events (forwarder.ts) are handed the
 * same object. What this code costs per request: docs/performance.md, "gateway handler, own code".
 */
import type { ServerResponse } from 'node:http';
import type { Histogram } from 'prom-client';
import type { Metrics } from '../observability/metrics.js';
import type { RequestCounts } from '../observability/plain-counts.js';
import { AccessLog, type Logger } from '../observability/log.js';
import type { RequestTrace } from '../tracing/request-trace.js';
import type { RouteRuntime, Runtime } from './runtime.js';

/** The `route` label, and the access log's route, of a request no route took. */
export const UNMATCHED = 'unmatched';
/** The status counted and logged for a request whose caller hung up before any answer (nginx's). */
const CLIENT_CLOSED_REQUEST = 499;

/** What is recorded of any request: the config it began on, and when. */
interface Recorded {
  readonly recorder: ExchangeRecorder;
  /** The config the request began on: a reload in between does not change how it ends. */
  readonly runtime: Runtime;
  readonly method: string;
  readonly requestId: string;
  /** performance.now() when the request arrived. */
  readonly started: number;
  /** The request's spans; undefined while tracing is off. */
  readonly trace: RequestTrace | undefined;
}

/** What recording reads of a matched request; the handler's Exchange is one. */
export interface RecordedExchange extends Recorded {
  readonly route: RouteRuntime;
  /** The upstream's status for the answer passed on to the caller (for the access log). */
  readonly upstreamStatus: number | undefined;
  /** The upstream request under way: cancelled when the caller goes first. */
  readonly proxyReq: { cancel(): void } | undefined;
}

/** A request refused before a route took it, or that no route matched. */
export type UnmatchedRequest = Recorded;

const EXCHANGE = Symbol('tokengate.exchange');
const UNMATCHED_REQUEST = Symbol('tokengate.unmatched');
type TrackedResponse = ServerResponse & { [EXCHANGE]?: RecordedExchange; [UNMATCHED_REQUEST]?: UnmatchedRequest };

/** A matched request's answer is complete. */
function onFinish(this: TrackedResponse): void {
  const exchange = this[EXCHANGE]!;
  exchange.recorder.record(exchange, this.statusCode);
}

/**
 * The caller's connection closed before the answer was complete: the caller hung up, or the
 * gateway cut short an answer whose upstream failed mid-body. The upstream request is aborted,
 * and the request is still counted and logged: with the status already sent, or with 499
 * (nginx's "client closed request") when none was.
 */
function onClose(this: TrackedResponse): void {
  if (this.writableFinished) return;
  const exchange = this[EXCHANGE]!;
  exchange.proxyReq?.cancel();
  exchange.recorder.record(exchange, this.headersSent ? this.statusCode : CLIENT_CLOSED_REQUEST);
}

function onUnmatchedFinish(this: TrackedResponse): void {
  const request = this[UNMATCHED_REQUEST]!;
  request.recorder.recordUnmatched(request, this.statusCode);
}

/** The matched request is recorded when `res` finishes (see onCallerClose for a caller that leaves). */
export function trackExchange(res: ServerResponse, exchange: RecordedExchange): void {
  (res as TrackedResponse)[EXCHANGE] = exchange;
  res.once('finish', onFinish);
}

/** From now on a caller that leaves early cancels the upstream call and is recorded (499 when no head went out). */
export function cancelOnCallerClose(res: ServerResponse): void {
  res.on('close', onClose);
}

/** The socket now belongs to a WebSocket tunnel: its closing no longer speaks for this request. */
export function releaseCallerClose(res: ServerResponse): void {
  res.off('close', onClose);
}

/** A request no route takes is recorded under `unmatched` when its answer (a problem) is complete. */
export function trackUnmatched(res: ServerResponse, request: UnmatchedRequest): void {
  (res as TrackedResponse)[UNMATCHED_REQUEST] = request;
  res.once('finish', onUnmatchedFinish);
}

/** One per proxy listener: the metric children and access logger it records with. */
export class ExchangeRecorder {
  /** tokengate_requests_total's counts of unmatched requests, by method and status. */
  readonly #unmatchedCounts: RequestCounts;
  readonly #unmatchedDuration: Histogram.Internal<'route'>;
  readonly #unmatchedLog: AccessLog;

  constructor(metrics: Metrics, log: Logger) {
    this.#unmatchedDuration = metrics.requestDuration.labels({ route: UNMATCHED });
    this.#unmatchedCounts = metrics.requestCounts(UNMATCHED);
    this.#unmatchedLog = new AccessLog(log, UNMATCHED);
  }

  /** A matched request ends with `status` (101 for a WebSocket handshake the moment its tunnel opens). */
  record(exchange: RecordedExchange, status: number): void {
    const { route } = exchange;
    const seconds = (performance.now() - exchange.started) / 1000;
    route.duration.observe(seconds);
    route.codes.count(exchange.method, status);
    accessLine(exchange.runtime, route.accessLog, exchange, status, seconds, exchange.upstreamStatus);
    exchange.trace?.end(status);
  }

  recordUnmatched(request: UnmatchedRequest, status: number): void {
    request.trace?.end(status);
    const seconds = (performance.now() - request.started) / 1000;
    this.#unmatchedDuration.observe(seconds);
    this.#unmatchedCounts.count(request.method, status);
    accessLine(request.runtime, this.#unmatchedLog, request, status, seconds, undefined);
  }
}

/**
 * One line per request at `logging.accessLog`. No path, query or headers: they can carry
 * credentials and unbounded text. The line is only built when the level is enabled.
 */
function accessLine(
  runtime: Runtime,
  log: AccessLog,
  request: Recorded,
  status: number,
  seconds: number,
  upstreamStatus: number | undefined,
): void {
  const level = runtime.config.logging.accessLog;
  if (level !== 'off') log.write(level, request.method, status, Math.round(seconds * 1_000_000) / 1000, request.requestId, upstreamStatus);
}
