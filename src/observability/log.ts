/**
 * Structured JSON logs (pino). Redaction is by key name wherever it appears, so a header map, a
 * token request body or an error object logged by mistake does not carry a credential out.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { DEFAULT_ACCESS_HEADER } from '../config/schema-route.js';
import { LineSink } from './log-sink.js';

export type { Logger };

const SENSITIVE = new Set([
  'authorization',
  'cookie',
  'set-cookie',
  'client_secret',
  'client_assertion',
  'access_token',
  'refresh_token',
  // RFC 9449 §4.1: the DPoP header carries a proof, bound to the access token it travels with.
  'dpop',
  DEFAULT_ACCESS_HEADER.toLowerCase(),
]);

/** Keys seen so far and whether they are sensitive: most lines repeat a few keys, and this spares a lower-cased copy of each. */
const verdicts = new Map<string, boolean>();
const MAX_VERDICTS = 10_000;

/**
 * Adds key names to what every logger redacts: the access-key headers a config names
 * (`access.header`), so a header map logged by mistake never carries a caller's key. Names are
 * never removed; one a reload dropped stays as harmless as the defaults.
 */
export function redactAlso(names: Iterable<string>): void {
  for (const name of names) SENSITIVE.add(name.toLowerCase());
  verdicts.clear();
}

function isSensitive(key: string): boolean {
  let verdict = verdicts.get(key);
  if (verdict === undefined) {
    verdict = SENSITIVE.has(key.toLowerCase());
    if (verdicts.size < MAX_VERDICTS) verdicts.set(key, verdict);
  }
  return verdict;
}

const CENSOR = '[redacted]';
/** Levels of nesting searched (the logged object is level 1); also what stops a cycle. */
const REDACT_DEPTH = 5;

/**
 * `value` with every sensitive key censored (compared case-insensitively), copying only the
 * objects on the way to one; `value` itself when there is none, the usual case. This replaces
 * pino's `redact` option: its wildcard paths (`*.authorization`, ...) run a redaction pass over
 * every value of every line: 80-120 µs per access line, against 5-8 µs for the line itself.
 */
function redact(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || depth > REDACT_DEPTH || ArrayBuffer.isView(value)) return value;
  const source = value as Record<string, unknown>;
  let replacements: Map<string, unknown> | undefined;
  for (const key of Object.keys(source)) {
    const field = source[key];
    const replaced = isSensitive(key) ? CENSOR : redact(field, depth + 1);
    if (replaced !== field) (replacements ??= new Map()).set(key, replaced);
  }
  if (replacements === undefined) return value;
  if (Array.isArray(source))
    return (source as unknown[]).map((item, index) => (replacements.has(String(index)) ? replacements.get(String(index)) : item));
  // Same prototype and own properties: an Error keeps its message, stack and class for pino's err
  // serializer, and a frozen object can still be copied.
  const descriptors = Object.getOwnPropertyDescriptors(source);
  for (const [key, replaced] of replacements) descriptors[key] = { value: replaced, enumerable: true, writable: true, configurable: true };
  return Object.create(Object.getPrototypeOf(source) as object | null, descriptors) as unknown;
}

export interface LoggerOptions {
  level?: string;
  pretty?: boolean;
  destination?: DestinationStream;
}

/**
 * How long a line may wait in the stdout buffer (Envoy flushes its access logs every second).
 * Under load one write carries hundreds of lines instead of one system call each; at exit what is
 * left is written, so only a killed process (SIGKILL) can lose the last lines.
 */
const FLUSH_INTERVAL_MS = 100;
/** A reader that stops draining stdout costs lines beyond this, never the gateway's memory. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
const SERVICE = 'tokengate';

function bufferedStdout(): DestinationStream {
  return new LineSink({
    fd: 1,
    flushIntervalMs: FLUSH_INTERVAL_MS,
    maxBufferedBytes: MAX_BUFFERED_BYTES,
    dropNotice: (dropped) =>
      `${JSON.stringify({
        level: 40,
        time: Date.now(),
        service: SERVICE,
        event: 'log_dropped',
        dropped,
        msg: `stdout was not read fast enough: ${dropped} log lines dropped`,
      })}\n`,
  });
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const base = {
    level,
    formatters: { log: (object: Record<string, unknown>) => redact(object, 1) as Record<string, unknown> },
    base: { service: SERVICE },
  };
  const pretty = options.pretty ?? (process.env.LOG_PRETTY === '1' || process.env.LOG_PRETTY === 'true');
  if (pretty && options.destination === undefined) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino(base, options.destination ?? bufferedStdout());
}

export type AccessLevel = 'trace' | 'debug' | 'info';

/** Characters a request id may be written with as it is, between quotes: no escaping can be needed. */
const PLAIN_JSON_TEXT = /^[\w.:@/+=-]*$/;
/** Methods seen so far, as JSON strings: Node's parser knows a few dozen, most lines repeat two or three. */
const methodsAsJson = new Map<string, string>();
const MAX_METHODS = 64;

function jsonMethod(method: string): string {
  let json = methodsAsJson.get(method);
  if (json === undefined) {
    json = JSON.stringify(method);
    if (methodsAsJson.size < MAX_METHODS) methodsAsJson.set(method, json);
  }
  return json;
}

/**
 * `micros / 1000` as JavaScript writes that number (`12`, `12.3`, `12.345`: no trailing zeros), from
 * integers: a double's shortest form costs about twice as much to work out.
 */
function millisText(micros: number): string {
  const whole = Math.trunc(micros / 1000);
  const fraction = micros - whole * 1000;
  if (fraction === 0 || !Number.isSafeInteger(micros) || micros < 0) return String(micros / 1000);
  const digits = fraction < 10 ? `00${fraction}` : fraction < 100 ? `0${fraction}` : String(fraction);
  return `${whole}.${fraction % 100 === 0 ? digits[0]! : fraction % 10 === 0 ? digits.slice(0, 2) : digits}`;
}

/**
 * One route's access lines, written straight to the logger's stream in the format pino gives
 * them: level, time, the logger's bindings (`service`, `event`, `route`), the fields, `msg`. Its
 * fields are fixed and none is a credential, so it skips pino's per-key serialisation and the
 * redaction walk, which cost 3-4 µs of the gateway's 50 µs per request at saturation. What is the
 * same on every line of the route is put together once, here.
 */
export class AccessLog {
  readonly #log: Logger;
  readonly #stream: { write(line: string): unknown };
  /** `{"level":30,"time":` for each access level. */
  readonly #heads: Readonly<Record<AccessLevel, string>>;
  /** `,"service":"tokengate","event":"access","route":"…","method":`, the bindings serialised by pino once. */
  readonly #middle: string;

  constructor(log: Logger, route: string) {
    this.#log = log.child({ event: 'access', route });
    const internals = this.#log as unknown as Record<symbol, unknown>;
    this.#stream = internals[pino.symbols.streamSym] as { write(line: string): unknown };
    const values = this.#log.levels.values;
    this.#heads = {
      trace: `{"level":${values.trace},"time":`,
      debug: `{"level":${values.debug},"time":`,
      info: `{"level":${values.info},"time":`,
    };
    this.#middle = `${internals[pino.symbols.chindingsSym] as string},"method":`;
  }

  /**
   * `requestId` is one the gateway accepted (a bounded set of URL-safe characters) or made; the
   * method is one Node's parser knows. Both are still escaped where they need it: a line must stay
   * JSON whatever reaches it. `durationMs` is to the microsecond, as the handler rounds it.
   */
  write(
    level: AccessLevel,
    method: string,
    status: number,
    durationMs: number,
    requestId: string,
    upstreamStatus: number | undefined,
  ): void {
    if (!this.#log.isLevelEnabled(level)) return;
    const id = PLAIN_JSON_TEXT.test(requestId) ? `"${requestId}"` : JSON.stringify(requestId);
    const upstream = upstreamStatus === undefined ? '' : `,"upstreamStatus":${upstreamStatus}`;
    this.#stream.write(
      `${this.#heads[level]}${Date.now()}${this.#middle}${jsonMethod(method)},"status":${status},` +
        `"durationMs":${millisText(Math.round(durationMs * 1000))},"requestId":${id}${upstream},"msg":"request"}\n`,
    );
  }
}
