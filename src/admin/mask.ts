/**
 * What the admin API shows of the config file: the file as written, except where a secret's value
 * may have been pasted by hand. A valid file holds secret *names* only, so these are masked (`***`):
 *
 * - a value where a secret name belongs that names no entry under `secrets` (`secret: s3cr3t`);
 * - a URL's user info (`https://id:SECRET@host`) and its credential query parameters;
 * - credential parameters (`client_secret`, `client_assertion`, `password`) wherever they are.
 *
 * A changing call that sends a masked value back unchanged keeps what the file has there
 * (restoreMasked), so saving a form that showed `***` never overwrites the value with `***`.
 */
export const MASK = '***';

/** Parameter names whose value is a credential (RFC 6749 §2.3.1, RFC 7523 §2.2, §4.3's password grant). */
const CREDENTIAL_NAMES = new Set(['client_secret', 'client_assertion', 'password']);

/** Key paths (inside a connection or a route) that hold the name of an entry under `secrets`. */
const SECRET_NAME_KEYS: ReadonlyArray<readonly string[]> = [
  ['clientSecret', 'secret'],
  ['privateKeyJwt', 'secret'],
  ['privateKeyJwt', 'certificate'],
  ['tlsClientAuth', 'certificate'],
  ['tlsClientAuth', 'key'],
  ['tls', 'ca'],
  ['tls', 'certificate'],
  ['tls', 'key'],
  ['dpop', 'key'],
];

const endsWith = (path: readonly PropertyKey[], tail: readonly string[]): boolean =>
  path.length >= tail.length && tail.every((key, i) => path[path.length - tail.length + i] === key);

/** A URL with its user info and credential query parameters masked; other text as it is. */
export function maskUrl(text: string): string {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) return text;
  // Not `new URL()`: it would normalise what the file says; only the sensitive parts change.
  const masked = text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, `$1${MASK}@`);
  return masked.replace(/([?&;])([^=&;#]*)=([^&;#]*)/g, (whole, separator: string, name: string) =>
    CREDENTIAL_NAMES.has(decodeName(name)) ? `${separator}${name}=${MASK}` : whole,
  );
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replaceAll('+', ' ')).toLowerCase();
  } catch {
    return name.toLowerCase();
  }
}

/** One scalar of the file at `path` (inside a connection or route), as the admin API shows it. */
export function maskLeaf<T>(path: readonly PropertyKey[], value: T, secretNames: ReadonlySet<string>): T | string {
  const last = path.at(-1);
  if (typeof last === 'string' && CREDENTIAL_NAMES.has(last.toLowerCase()) && value !== null) return MASK;
  if (typeof value !== 'string') return value;
  if (SECRET_NAME_KEYS.some((tail) => endsWith(path, tail)) && !secretNames.has(value)) return MASK;
  if (path.length >= 3 && path.at(-3) === 'apiKeys' && last === 'secret' && !secretNames.has(value)) return MASK;
  return maskUrl(value);
}

/** `value` (plain data from the file) with every string masked as maskLeaf says. */
export function maskTree(value: unknown, secretNames: ReadonlySet<string>, path: readonly PropertyKey[] = []): unknown {
  if (Array.isArray(value)) return value.map((item, i) => maskTree(item, secretNames, [...path, i]));
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, maskTree(item, secretNames, [...path, key])]));
  return maskLeaf(path, value, secretNames);
}

/**
 * `sent` with each string that is exactly what the API showed for the file's value at the same
 * path (a masked one) replaced by the file's value: sending a form back unchanged changes nothing.
 */
export function restoreMasked(
  sent: unknown,
  existing: unknown,
  secretNames: ReadonlySet<string>,
  path: readonly PropertyKey[] = [],
): unknown {
  if (typeof sent === 'string') {
    if (typeof existing === 'object' || existing === undefined) return sent;
    const shown = maskLeaf(path, existing, secretNames);
    return shown !== existing && sent === shown ? existing : sent;
  }
  if (typeof sent !== 'object' || sent === null) return sent;
  const at = (key: string | number): unknown =>
    typeof existing === 'object' && existing !== null && Object.hasOwn(existing, key)
      ? (existing as Record<string, unknown>)[key]
      : undefined;
  if (Array.isArray(sent)) return sent.map((item: unknown, i) => restoreMasked(item, at(i), secretNames, [...path, i]));
  return Object.fromEntries(Object.entries(sent).map(([key, item]) => [key, restoreMasked(item, at(key), secretNames, [...path, key])]));
}
