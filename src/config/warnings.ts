/**
 * What a config deserves a warning for, in one list that `serve` logs (at start and on every
 * reload) and `validate` prints: a CI gate built on `validate --strict` refuses exactly what
 * `serve` would warn about. Each warning keeps the log event it is written under.
 */
import { isLoopbackHost } from './checks.js';
import type { ConfigOf, ConnectionSettings } from './types.js';

export interface ConfigWarning {
  readonly event: 'config_warning' | 'no_access_policy' | 'tracing_warning';
  readonly message: string;
  /** Extra log fields (never a secret). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export function configWarnings(config: ConfigOf<ConnectionSettings>): ConfigWarning[] {
  const warnings: ConfigWarning[] = config.warnings.map((message) => ({ event: 'config_warning', message }));
  const exposed = !isLoopbackHost(config.listen.host);
  const unguarded = config.access === undefined && config.routes.some((r) => r.access === undefined && r.auth.type === 'client-connection');
  if (exposed && unguarded) {
    warnings.push({
      event: 'no_access_policy',
      message:
        `SECURITY: the proxy listens on ${config.listen.host} and routes with credentials have no access policy: ` +
        'anyone who can reach it can spend those credentials. Set access (apiKeys / allowFrom).',
      fields: { host: config.listen.host },
    });
  }
  return warnings;
}
