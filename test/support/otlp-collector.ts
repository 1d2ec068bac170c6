/**
 * An OpenTelemetry collector for the tests: receives OTLP/HTTP trace exports (protobuf and JSON)
 * on a loopback port and keeps every span, flattened, plus every request body as sent (for the
 * "no secret anywhere in the exported bytes" checks). Protobuf is decoded with the message classes
 * OpenTelemetry publishes (generated from opentelemetry-proto by protobufjs), not by hand.
 *
 * `mode: 'hang'` accepts each export and never answers (a collector stuck behind a full queue).
 */
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

interface ProtoMessageClass {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Record<string, unknown>): unknown;
}
const require = createRequire(import.meta.url);
const generated = require('otlp-transformer-protos/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: ProtoMessageClass } } } } };
};
const ExportTraceServiceRequest = generated.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

export type AttributeValue = string | number | boolean;

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** undefined for a root span (of this process's view). */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 2 SERVER, 3 CLIENT. */
  kind: number;
  attributes: Record<string, AttributeValue>;
  /** OTLP StatusCode: 0 UNSET, 1 OK, 2 ERROR. */
  statusCode: number;
  /** Nanoseconds since the epoch, as sent (a 64-bit integer in text), and the span's length. */
  startTimeUnixNano: string;
  durationMs: number;
  resource: Record<string, AttributeValue>;
  /** How the span arrived. */
  encoding: 'protobuf' | 'json';
}

export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CLIENT = 3;
export const STATUS_UNSET = 0;
export const STATUS_ERROR = 2;

export interface Collector {
  url: string;
  spans: CollectedSpan[];
  /** Every export request body, as received. */
  bodies: Buffer[];
  /** Resolves with the spans once `predicate` holds for them (checked after every export). */
  waitFor(predicate: (spans: CollectedSpan[]) => boolean, timeoutMs?: number): Promise<CollectedSpan[]>;
  /** Export requests received (answered or not). */
  readonly requests: number;
  close(): Promise<void>;
}

interface RawKeyValue {
  key: string;
  value?: { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
}
interface RawSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  attributes?: RawKeyValue[];
  status?: { code?: number };
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
}
interface RawRequest {
  resourceSpans?: Array<{ resource?: { attributes?: RawKeyValue[] }; scopeSpans?: Array<{ spans?: RawSpan[] }> }>;
}

function attributes(list: RawKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) {
    if (value === undefined) continue;
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue;
  }
  return out;
}

/** OTLP/JSON ids are hex already; protobuf bytes come out of toObject as base64. */
function hexId(value: string | undefined, encoding: 'protobuf' | 'json'): string | undefined {
  if (value === undefined || value === '') return undefined;
  return encoding === 'json' ? value.toLowerCase() : Buffer.from(value, 'base64').toString('hex');
}

function flatten(request: RawRequest, encoding: 'protobuf' | 'json'): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributes(resourceSpans.resource?.attributes);
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        out.push({
          traceId: hexId(span.traceId, encoding)!,
          spanId: hexId(span.spanId, encoding)!,
          parentSpanId: hexId(span.parentSpanId, encoding),
          name: span.name,
          kind: span.kind ?? 0,
          attributes: attributes(span.attributes),
          statusCode: span.status?.code ?? 0,
          startTimeUnixNano: String(span.startTimeUnixNano ?? 0),
          durationMs: Number(BigInt(span.endTimeUnixNano ?? 0) - BigInt(span.startTimeUnixNano ?? 0)) / 1e6,
          resource,
          encoding,
        });
      }
    }
  }
  return out;
}

function decode(body: Buffer, contentType: string | undefined): CollectedSpan[] {
  if (contentType?.startsWith('application/json') === true) return flatten(JSON.parse(body.toString('utf8')) as RawRequest, 'json');
  const message = ExportTraceServiceRequest.decode(body);
  const plain = ExportTraceServiceRequest.toObject(message, { longs: String, enums: Number, bytes: String, defaults: false });
  return flatten(plain as RawRequest, 'protobuf');
}

/** `port`: listen there (a test that starts the collector late, on a port the gateway already exports to). */
export async function startCollector(options: { mode?: 'ok' | 'hang'; port?: number } = {}): Promise<Collector> {
  const events = new EventEmitter();
  const spans: CollectedSpan[] = [];
  const bodies: Buffer[] = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests++;
      if (options.mode === 'hang') return;
      const body = Buffer.concat(chunks);
      bodies.push(body);
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      try {
        spans.push(...decode(body, req.headers['content-type']));
      } catch (error) {
        res.writeHead(400).end(String(error));
        return;
      }
      const json = req.headers['content-type']?.startsWith('application/json') === true;
      // An empty ExportTraceServiceResponse: full success.
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' }).end(json ? '{}' : '');
      events.emit('spans');
    });
  });
  await new Promise<void>((done) => server.listen(options.port ?? 0, '127.0.0.1', done));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    get requests() {
      return requests;
    },
    async waitFor(predicate, timeoutMs = 15_000) {
      const signal = AbortSignal.timeout(timeoutMs);
      while (!predicate(spans)) {
        try {
          await once(events, 'spans', { signal });
        } catch {
          throw new Error(
            `the collector did not receive the expected spans within ${timeoutMs} ms; it has ${JSON.stringify(spans, null, 1)}`,
          );
        }
      }
      return spans;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
