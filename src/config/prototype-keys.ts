/**
 * Keys that name an object's prototype in JavaScript. As a key of parsed data they are traps: an
 * assignment `out[key] = value` (zod's records do it) sets the prototype instead of adding an
 * entry, so the entry vanishes without a word, or a later lookup finds what the prototype holds.
 * Nothing in a config or an admin body has a reason to use them: they are refused wherever they are.
 */
export const PROTOTYPE_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

export const PROTOTYPE_KEY_MESSAGE = `${PROTOTYPE_KEYS.join(', ')} cannot be used as a key`;

/** The key path of every prototype key in `value` (data from YAML or JSON: no cycles, bounded depth). */
export function prototypeKeyPaths(value: unknown, keyPath: readonly PropertyKey[] = []): PropertyKey[][] {
  if (typeof value !== 'object' || value === null) return [];
  const found: PropertyKey[][] = [];
  for (const [key, item] of Object.entries(value)) {
    const path = [...keyPath, Array.isArray(value) ? Number(key) : key];
    if (!Array.isArray(value) && PROTOTYPE_KEYS.includes(key)) found.push(path);
    else found.push(...prototypeKeyPaths(item, path));
  }
  return found;
}
