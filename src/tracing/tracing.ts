/**
 * The OpenTelemetry SDK as tokengate runs it: one tracer provider per process, parent-based ratio
 * sampling, a batch span processor exporting over OTLP/HTTP off the request path.
 *
 * No context manager is installed (no AsyncLocalStorage): every span is started with its parent
 * context passed explicitly (the request's trace object carries it), so the rest of the process
 * pays nothing for tracing, and nothing at all when it is off (the handler holds no Tracing then).
 */
import type { IncomingMessage } from 'node:http';
import { ROOT_CONTEXT, defaultTextMapGetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { WatchedExporter } from './export-watch.js';
import { redactAbsoluteUrl } from './redact.js';
import { RequestTrace } from './request-trace.js';
import type { TracingSettings } from './settings.js';

/** Spans are exported at most 5 s apart (docs/tracing.md); a second keeps traces close to live. */
export const EXPORT_INTERVAL_MS = 1_000;
/** One export (one POST, the exporter's retries included) may take this long before it is given up. */
export const EXPORT_TIMEOUT_MS = 5_000;
/** Spans waiting for export; beyond this new ones are dropped, so a dead collector cannot grow memory. */
export const MAX_QUEUED_SPANS = 2_048;
export const MAX_SPANS_PER_EXPORT = 512;
/** The last flush at shutdown waits no longer than one export. */
export const SHUTDOWN_FLUSH_MS = EXPORT_TIMEOUT_MS;

export class Tracing {
  readonly tracer: Tracer;
  /** W3C Trace Context (traceparent / tracestate), the propagation the OpenTelemetry SDKs default to. */
  readonly propagator = new W3CTraceContextPropagator();
  readonly settings: TracingSettings;
  /** Where spans go, as it may be logged (no user or password). */
  readonly endpoint: string;
  readonly #provider: BasicTracerProvider;

  constructor(settings: TracingSettings, exportFailures: Counter.Internal, log: Logger) {
    this.settings = settings;
    const options = { url: settings.url, timeoutMillis: EXPORT_TIMEOUT_MS };
    const exporter = settings.protocol === 'http/json' ? new JsonTraceExporter(options) : new ProtobufTraceExporter(options);
    this.endpoint = redactAbsoluteUrl(new URL(settings.url));
    this.#provider = new BasicTracerProvider({
      resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName })),
      // A caller's sampled traceparent is always continued and an unsampled one never recorded;
      // only traces that start here are sampled by ratio.
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRatio) }),
      spanProcessors: [
        new BatchSpanProcessor(new WatchedExporter(exporter, exportFailures, log, this.endpoint), {
          scheduledDelayMillis: EXPORT_INTERVAL_MS,
          exportTimeoutMillis: EXPORT_TIMEOUT_MS,
          maxQueueSize: MAX_QUEUED_SPANS,
          maxExportBatchSize: MAX_SPANS_PER_EXPORT,
        }),
      ],
    });
    this.tracer = this.#provider.getTracer('tokengate');
  }

  /** The SERVER span of a request, continuing the caller's trace when it sent a traceparent. */
  startRequest(req: IncomingMessage, method: string, scheme: 'http' | 'https', requestId: string): RequestTrace {
    const parent =
      req.headers.traceparent === undefined ? ROOT_CONTEXT : this.propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    return new RequestTrace(this.tracer, this.propagator, parent, req, method, scheme, requestId);
  }

  /** Exports what is queued (bounded: a hung collector cannot hold up a shutdown) and stops. */
  async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((done) => (timer = setTimeout(done, SHUTDOWN_FLUSH_MS)));
    await Promise.race([this.#provider.shutdown().catch(() => undefined), late]);
    clearTimeout(timer);
  }
}
