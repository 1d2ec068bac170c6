/**
 * Whether and where traces are exported: the YAML's `tracing` block overlaid on the standard
 * OpenTelemetry environment variables (OpenTelemetry specification, "Environment Variable
 * Specification" and "OTLP Exporter Configuration"). A key the YAML sets wins over its variable.
 */
import type { RawTracing } from '../config/schema.js';
import { TRACING_PROTOCOLS } from '../config/schema-admin.js';

export type TracingProtocol = (typeof TRACING_PROTOCOLS)[number];

export const DEFAULT_OTLP_BASE_URL = 'http://localhost:4318';
export const DEFAULT_TRACING_PROTOCOL: TracingProtocol = 'http/protobuf';
export const DEFAULT_SAMPLE_RATIO = 1.0;
export const DEFAULT_SERVICE_NAME = 'tokengate';

export interface TracingSettings {
  /** Where spans are POSTed: a base URL with /v1/traces appended, or a traces endpoint as given. */
  readonly url: string;
  readonly protocol: TracingProtocol;
  readonly sampleRatio: number;
  readonly serviceName: string;
}

export interface ResolvedTracing {
  /** undefined: tracing is off. */
  readonly settings: TracingSettings | undefined;
  /** Environment values that could not be used, for the start-up log. */
  readonly warnings: readonly string[];
}

/** OTLP/HTTP §"Endpoint URLs for OTLP/HTTP": a base URL gets the signal's path appended. */
function tracesUrl(base: string): string {
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

function isHttpUrl(value: string): boolean {
  return URL.canParse(value) && /^https?:$/.test(new URL(value).protocol);
}

/** An unset variable and an empty one mean the same (the specification's rule for every OTEL_* variable). */
function variable(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function resolveTracing(yaml: RawTracing | undefined, env: NodeJS.ProcessEnv): ResolvedTracing {
  const warnings: string[] = [];
  if (variable(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { settings: undefined, warnings };
  const tracesEndpoint = variable(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const baseEndpoint = variable(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const enabled = yaml?.enabled ?? (tracesEndpoint !== undefined || baseEndpoint !== undefined);
  if (!enabled) return { settings: undefined, warnings };

  let url: string | undefined;
  if (yaml?.endpoint !== undefined) url = tracesUrl(yaml.endpoint);
  else {
    for (const [name, value, asGiven] of [
      ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', tracesEndpoint, true],
      ['OTEL_EXPORTER_OTLP_ENDPOINT', baseEndpoint, false],
    ] as const) {
      if (value === undefined) continue;
      if (isHttpUrl(value)) {
        url = asGiven ? value : tracesUrl(value);
        break;
      }
      warnings.push(`${name} is not an http: or https: URL; it is ignored`);
    }
  }
  if (url === undefined) {
    // Asked for by the YAML but no usable endpoint anywhere: the specification's default.
    if (yaml?.enabled !== true) return { settings: undefined, warnings };
    url = tracesUrl(DEFAULT_OTLP_BASE_URL);
  }

  let protocol = yaml?.protocol;
  if (protocol === undefined) {
    const name =
      variable(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') === undefined
        ? 'OTEL_EXPORTER_OTLP_PROTOCOL'
        : 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL';
    const value = variable(env, name);
    if (value !== undefined && !(TRACING_PROTOCOLS as readonly string[]).includes(value))
      warnings.push(
        `${name}=${value.slice(0, 40)} is not supported (only ${TRACING_PROTOCOLS.join(' and ')}); using ${DEFAULT_TRACING_PROTOCOL}`,
      );
    else protocol = value as TracingProtocol | undefined;
  }

  return {
    settings: Object.freeze({
      url,
      protocol: protocol ?? DEFAULT_TRACING_PROTOCOL,
      sampleRatio: yaml?.sampleRatio ?? DEFAULT_SAMPLE_RATIO,
      serviceName: yaml?.serviceName ?? variable(env, 'OTEL_SERVICE_NAME') ?? DEFAULT_SERVICE_NAME,
    }),
    warnings,
  };
}
