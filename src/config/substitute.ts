/**
 * Stage 2: `${VAR}` and `${VAR:-default}` in non-secret string values; `$${VAR}` stays literal.
 * Secret definitions are left alone: they have `env` for that, and a substituted secret could be logged.
 */
import type { Report } from './report.js';

const VARIABLE = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function substituteVariables(value: unknown, keyPath: PropertyKey[], env: NodeJS.ProcessEnv, report: Report): unknown {
  if (typeof value === 'string') {
    const single = /^\$\{[^}]*\}$/.test(value);
    const result = value.replace(VARIABLE, (whole, escaped: string | undefined, name: string, fallback: string | undefined) => {
      if (escaped !== undefined) return whole.slice(1);
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      report(keyPath, `environment variable ${name} is not set (write \${${name}:-default} for a default)`);
      return whole;
    });
    // `port: ${PORT:-8080}` means a number: a value that is one variable takes the type it reads as.
    if (single && /^-?\d+(\.\d+)?$/.test(result)) return Number(result);
    if (single && (result === 'true' || result === 'false')) return result === 'true';
    return result;
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteVariables(item, [...keyPath, i], env, report));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = keyPath.length === 0 && k === 'secrets' ? v : substituteVariables(v, [...keyPath, k], env, report);
    }
    return out;
  }
  return value;
}
