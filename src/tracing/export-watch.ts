/**
 * Watches the span exporter: every failed export is counted, and an outage is logged once when it
 * starts and once when the collector answers again, so a collector that is down for an hour costs
 * two log lines, not one per batch. The exporter's own errors never reach a request: spans are
 * exported by the batch processor, off the request path.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Counter } from 'prom-client';
import { sanitizeText } from '../errors/sanitize.js';
import type { Logger } from 'pino';

export class WatchedExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #failures: Counter.Internal;
  readonly #log: Logger;
  readonly #url: string;
  /** Failed exports since the last one that succeeded; above 0 the outage has been logged. */
  #failedInARow = 0;

  constructor(inner: SpanExporter, failures: Counter.Internal, log: Logger, url: string) {
    this.#inner = inner;
    this.#failures = failures;
    this.#log = log;
    this.#url = url;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) this.#succeeded();
      else this.#failed(result.error, spans.length);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }

  #failed(error: Error | undefined, spans: number): void {
    this.#failures.inc();
    if (this.#failedInARow++ > 0) return;
    // The message only ("connect ECONNREFUSED ...", "Request Timeout"): a collector's answer body is
    // not ours to copy into the log.
    this.#log.warn(
      {
        event: 'trace_export_failed',
        endpoint: this.#url,
        error: sanitizeText(error?.message ?? 'unknown error', 200),
        droppedSpans: spans,
      },
      `cannot export traces to ${this.#url}; spans are dropped until the collector answers again`,
    );
  }

  #succeeded(): void {
    if (this.#failedInARow === 0) return;
    this.#log.info(
      { event: 'trace_export_recovered', endpoint: this.#url, failedExports: this.#failedInARow },
      `trace export to ${this.#url} works again after ${this.#failedInARow} failed exports`,
    );
    this.#failedInARow = 0;
  }
}
