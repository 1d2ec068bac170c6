/**
 * Stage 2: `${VAR}` and `${VAR:-default}` in non-secret string values; `$${VAR}` stays literal.
 * Secret definitions are left alone: they have `env` for that, and a substituted secret could be logged.
 * A variable that is unset (or empty) without a default is one problem, however many values use
 * it: reported where it is first used, naming the others. The values that still hold it are
 * returned too, so that later stages do not report them again (a `${VAR}` is no URL, no number).
 */
import { formatPath } from './errors.js';
import type { Report } from './report.js';

const VARIABLE = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
/** How many other key paths a problem names before it says "and N more". */
const MAX_PLACES_NAMED = 5;

export interface Substituted {
  readonly value: unknown;
  /** Key paths whose value kept a variable that has no value. */
  readonly unresolved: ReadonlyArray<readonly PropertyKey[]>;
}

interface Missing {
  empty: boolean;
  places: PropertyKey[][];
}

export function substituteVariables(value: unknown, env: NodeJS.ProcessEnv, report: Report): Substituted {
  const missing = new Map<string, Missing>();
  const unresolved: PropertyKey[][] = [];
  const substituted = walk(
    value,
    [],
    env,
    (name, keyPath) => {
      const entry = missing.get(name) ?? { empty: env[name] === '', places: [] };
      // A value using it twice is one place.
      if (entry.places.at(-1) !== keyPath) entry.places.push(keyPath);
      missing.set(name, entry);
    },
    unresolved,
  );
  for (const [name, { empty, places }] of missing) {
    const [first, ...others] = places;
    const named = others.slice(0, MAX_PLACES_NAMED).map(formatPath);
    const more = others.length > MAX_PLACES_NAMED ? ` and ${others.length - MAX_PLACES_NAMED} more` : '';
    const also = others.length === 0 ? '' : `; also used at ${named.join(', ')}${more}`;
    report(first!, `environment variable ${name} is ${empty ? 'empty' : 'not set'} (write \${${name}:-default} for a default)${also}`);
  }
  return { value: substituted, unresolved };
}

function walk(
  value: unknown,
  keyPath: PropertyKey[],
  env: NodeJS.ProcessEnv,
  miss: (name: string, keyPath: PropertyKey[]) => void,
  unresolved: PropertyKey[][],
): unknown {
  if (typeof value === 'string') {
    const single = /^\$\{[^}]*\}$/.test(value);
    let kept = false;
    const result = value.replace(VARIABLE, (whole, escaped: string | undefined, name: string, fallback: string | undefined) => {
      if (escaped !== undefined) return whole.slice(1);
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      miss(name, keyPath);
      kept = true;
      return whole;
    });
    if (kept) unresolved.push(keyPath);
    // `port: ${PORT:-8080}` means a number: a value that is one variable takes the type it reads as.
    if (single && /^-?\d+(\.\d+)?$/.test(result)) return Number(result);
    if (single && (result === 'true' || result === 'false')) return result === 'true';
    return result;
  }
  if (Array.isArray(value)) return value.map((item, i) => walk(item, [...keyPath, i], env, miss, unresolved));
  if (typeof value === 'object' && value !== null) {
    // fromEntries defines own properties: `out[k] =` with k `__proto__` would set the prototype
    // instead, and the entry would vanish before the schema could refuse its name.
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        keyPath.length === 0 && k === 'secrets' ? v : walk(v, [...keyPath, k], env, miss, unresolved),
      ]),
    );
  }
  return value;
}
