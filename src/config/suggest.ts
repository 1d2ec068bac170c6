/**
 * "Did you mean `keyId`?": the known key closest to an unknown one at the same place in the
 * config, by edit distance (case-insensitive first: `keyID` is `keyId`). The known keys come from
 * the config's JSON Schema, so every key the loader accepts is a candidate and nothing else is.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

type JsonSchema = Record<string, unknown>;

const isObject = (value: unknown): value is JsonSchema => typeof value === 'object' && value !== null && !Array.isArray(value);

let root: JsonSchema | undefined;

function schemaRoot(): JsonSchema {
  root ??= z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as JsonSchema;
  return root;
}

/** The schema itself and every branch of its unions. */
function branches(schema: JsonSchema): JsonSchema[] {
  const out = [schema];
  for (const combinator of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = schema[combinator];
    if (Array.isArray(list)) for (const branch of list) if (isObject(branch)) out.push(...branches(branch));
  }
  return out;
}

/** The keys an object at `keyPath` may have (every union branch's), or none when the path is unknown. */
export function knownKeys(keyPath: readonly PropertyKey[]): string[] {
  let nodes = [schemaRoot()];
  for (const part of keyPath) {
    const next: JsonSchema[] = [];
    for (const node of nodes.flatMap(branches)) {
      const properties = node.properties;
      if (typeof part === 'string' && isObject(properties) && isObject(properties[part])) next.push(properties[part]);
      else if (typeof part === 'number' && isObject(node.items)) next.push(node.items);
      else if (typeof part === 'string' && isObject(node.additionalProperties)) next.push(node.additionalProperties);
    }
    nodes = next;
  }
  const keys = new Set<string>();
  for (const node of nodes.flatMap(branches)) if (isObject(node.properties)) for (const key of Object.keys(node.properties)) keys.add(key);
  keys.delete('$schema');
  return [...keys];
}

/** Levenshtein distance (insert, delete, substitute). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The candidate closest to `word`, if one is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: { key: string; score: number } | undefined;
  for (const key of candidates) {
    // Case counts for little: a wrong case is a better match than any other single edit.
    const score = distance(word.toLowerCase(), key.toLowerCase()) + distance(word, key) / 100;
    if (score <= limit && (best === undefined || score < best.score)) best = { key, score };
  }
  return best?.key;
}
