/**
 * Every spelling in which an authorization server could quote a credential it was sent, so that
 * its error text can be scrubbed of all of them: a server echoes what it parsed (raw), what it
 * received (URL- or form-encoded), or the Basic header it could not use (base64 of `id:secret`,
 * RFC 7617 §2, with or without the form-encoding RFC 6749 §2.3.1 asks for before Basic).
 */

/** application/x-www-form-urlencoded as URLSearchParams writes it (space as `+`). */
export const formEncode = (text: string): string => new URLSearchParams({ s: text }).toString().slice(2);

/** `%XX` escapes with lower-case hex digits: servers differ, and a quote keeps the peer's case. */
const lowerHex = (encoded: string): string => encoded.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** The spellings of one credential value, longest first (a longer spelling may contain a shorter one). */
export function spellingsOf(secret: string, clientId?: string): string[] {
  if (secret === '') return [];
  const encodings = [secret, encodeURIComponent(secret), formEncode(secret)];
  const spellings = [...encodings, ...encodings.map(lowerHex)];
  if (clientId !== undefined) {
    for (const pair of [`${clientId}:${secret}`, `${formEncode(clientId)}:${formEncode(secret)}`]) {
      const encoded = base64(pair);
      spellings.push(encoded, encoded.replace(/=+$/, ''));
    }
  }
  return [...new Set(spellings)].sort((a, b) => b.length - a.length);
}

/** `text` with every spelling of every credential replaced by `replacement`. */
export function scrubSpellings(text: string, spellings: readonly string[], replacement: string): string {
  let out = text;
  for (const spelling of [...spellings].sort((a, b) => b.length - a.length)) out = out.replaceAll(spelling, replacement);
  return out;
}
