/**
 * Stage 3: the substituted data against the zod schema (src/config/schema.ts). On failure the
 * valid sections and entries are salvaged, so that the semantic stage can still report its own
 * problems in the same run; such a salvaged config is never returned as valid.
 */
import type { z } from 'zod';
import { PROTOTYPE_KEY_MESSAGE, prototypeKeyPaths } from './prototype-keys.js';
import type { Problems } from './report.js';
import { configSchema, type RawConfig, type RawRoute } from './schema.js';
import { connectionSchema } from './schema-connection.js';
import { routeSchema } from './schema-route.js';
import { secretSchema } from './schema-values.js';
import { closest, knownKeys } from './suggest.js';

export interface ValidatedConfig {
  readonly raw: RawConfig;
  /** The routes by index; an invalid route keeps its index as undefined. */
  readonly routeList: ReadonlyArray<RawRoute | undefined>;
  /** Names declared in the file, valid or not: a reference to an invalid entry is not "unknown". */
  readonly declaredSecrets: ReadonlySet<string>;
  readonly declaredConnections: ReadonlySet<string>;
}

export function validateSchema(data: Record<string, unknown>, problems: Problems): ValidatedConfig {
  // Before zod: its records drop a `__proto__` key silently (a connection of that name would vanish).
  for (const keyPath of prototypeKeyPaths(data)) problems.report(keyPath, PROTOTYPE_KEY_MESSAGE);
  const declaredSecrets = new Set(Object.keys(asRecord(data.secrets)));
  const declaredConnections = new Set(Object.keys(asRecord(data.connections)));
  const parsed = configSchema.safeParse(data);
  if (parsed.success) return { raw: parsed.data, routeList: parsed.data.routes, declaredSecrets, declaredConnections };
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      // One problem per unknown key, located at the key itself rather than at its parent.
      const known = knownKeys(issue.path);
      for (const key of issue.keys) {
        const suggestion = closest(key, known);
        problems.report([...issue.path, key], suggestion === undefined ? 'unknown key' : `unknown key; did you mean \`${suggestion}\`?`);
      }
    } else problems.report(issue.path, describeIssue(issue, data));
  }
  const salvaged = salvage(data);
  if (salvaged === undefined) throw problems.error();
  return { ...salvaged, declaredSecrets, declaredConnections };
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** The value at `keyPath` in the data as written, or undefined when a key on the way is absent. */
function valueAt(data: unknown, keyPath: readonly PropertyKey[]): unknown {
  let value = data;
  for (const part of keyPath) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  const key = issue.path.at(-1);
  // zod says "Invalid input: expected string, received undefined" for a key that is not there.
  if (issue.code === 'invalid_type' && typeof key === 'string' && valueAt(data, issue.path) === undefined) return `\`${key}\` is required`;
  if (issue.code === 'invalid_union' && issue.path.length === 2 && issue.path[0] === 'secrets') {
    return 'a secret is exactly one of { env: VAR }, { file: PATH } or { value: TEXT }';
  }
  return issue.message;
}

/**
 * After a schema failure: each section and entry that is valid on its own (invalid sections take
 * their defaults, invalid secrets and connections are left out, invalid routes keep their index
 * as undefined). Undefined when an invalid section has no default to stand in for it.
 */
function salvage(data: Record<string, unknown>): { raw: RawConfig; routeList: ReadonlyArray<RawRoute | undefined> } | undefined {
  const sections: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(configSchema.shape)) {
    const result = schema.safeParse(data[key]);
    const fallback = result.success ? result : schema.safeParse(undefined);
    if (!fallback.success) return undefined;
    sections[key] = fallback.data;
  }
  const validEntries = <T>(value: unknown, schema: z.ZodType<T>): Record<string, T> => {
    const out: Record<string, T> = {};
    for (const [name, entry] of Object.entries(asRecord(value))) {
      const result = schema.safeParse(entry);
      if (result.success) out[name] = result.data;
    }
    return out;
  };
  sections.secrets = validEntries(data.secrets, secretSchema);
  sections.connections = validEntries(data.connections, connectionSchema);
  const routeList = Array.isArray(data.routes) ? data.routes.map((route) => routeSchema.safeParse(route).data) : [];
  return { raw: sections as RawConfig, routeList };
}
