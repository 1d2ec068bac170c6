/**
 * Structured JSON logs (pino). Redaction is by key name wherever it appears, so a header map, a
 * token request body or an error object logged by mistake does not carry a credential out.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

const SENSITIVE = ['authorization', 'cookie', 'set-cookie', 'client_secret', 'client_assertion', 'access_token', 'refresh_token', 'x-gateway-key'];
const accessor = (key: string) => (key.includes('-') ? `["${key}"]` : `.${key}`);
export const REDACT_PATHS = SENSITIVE.flatMap((key) => [
  key.includes('-') ? `["${key}"]` : key,
  ...['*', '*.*', '*.*.*'].map((prefix) => `${prefix}${accessor(key)}`),
]);

export interface LoggerOptions {
  level?: string;
  pretty?: boolean;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'tokengate' } };
  const pretty = options.pretty ?? (process.env.LOG_PRETTY === '1' || process.env.LOG_PRETTY === 'true');
  if (pretty && options.destination === undefined) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return options.destination === undefined ? pino(base) : pino(base, options.destination);
}
