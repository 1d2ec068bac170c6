/**
 * Server-provided DPoP nonces (RFC 9449 §8, §9): remembered per origin, replaced by any newer one,
 * and read out of what a peer sends — which is untrusted text, so everything here takes any
 * string and never throws.
 */

/** RFC 9449 §8.1: `DPoP-Nonce = 1*NQCHAR`, NQCHAR = %x21 / %x23-5B / %x5D-7E. */
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
/** No grammar limit exists; a nonce goes into every proof, so a giant one is refused. */
export const MAX_NONCE_LENGTH = 512;
/** Origins come from the config (token endpoints, upstreams): this only guards against surprises. */
export const MAX_ORIGINS = 256;
/** Challenges longer than this are read only this far. */
const MAX_CHALLENGE_LENGTH = 4096;

export function isNonce(value: string): boolean {
  return value.length <= MAX_NONCE_LENGTH && NONCE.test(value);
}

/** The nonce in a `DPoP-Nonce` header value, or undefined when it is absent, repeated or malformed. */
export function nonceFrom(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const value = header.trim();
  return isNonce(value) ? value : undefined;
}

/** RFC 9110 §5.6.2 token characters. */
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
/** An auth-scheme (bare token) or an auth-param (token = token / quoted-string), RFC 9110 §11.2. */
const CHALLENGE_PART = new RegExp(`(${TOKEN})(?:[ \\t]*=[ \\t]*("(?:[^"\\\\]|\\\\[\\s\\S])*"|${TOKEN}))?`, 'g');

/**
 * The `error` parameter of the `DPoP` challenge in a `WWW-Authenticate` value (RFC 9449 §7.1,
 * RFC 9110 §11.6.1), e.g. `use_dpop_nonce` or `invalid_token`; undefined when there is none.
 * Node joins repeated WWW-Authenticate headers with ", ", so several challenges may follow each other.
 */
export function dpopChallengeError(header: string | string[] | undefined): string | undefined {
  const text = (Array.isArray(header) ? header.join(', ') : (header ?? '')).slice(0, MAX_CHALLENGE_LENGTH);
  let inDpop = false;
  for (const [, name, value] of text.matchAll(CHALLENGE_PART)) {
    if (value === undefined) {
      // A bare token begins the next challenge (or is a token68, which ends DPoP's parameters too).
      inDpop = name!.toLowerCase() === 'dpop';
    } else if (inDpop && name!.toLowerCase() === 'error') {
      return value.startsWith('"') ? value.slice(1, -1).replace(/\\([\s\S])/g, '$1') : value;
    }
  }
  return undefined;
}

/** Nonces per origin (`https://host:port`), the latest one each server sent. */
export class NonceStore {
  readonly #byOrigin = new Map<string, string>();

  get(origin: string): string | undefined {
    return this.#byOrigin.get(origin);
  }

  /**
   * Takes the `DPoP-Nonce` header of any answer from `origin` (RFC 9449 §8.2: a server may send a
   * new one at any time). Returns true when it is a usable nonce that differs from the one held.
   */
  remember(origin: string, header: string | string[] | undefined): boolean {
    const nonce = nonceFrom(header);
    if (nonce === undefined || this.#byOrigin.get(origin) === nonce) return false;
    this.#byOrigin.delete(origin);
    if (this.#byOrigin.size >= MAX_ORIGINS) this.#byOrigin.delete(this.#byOrigin.keys().next().value!);
    this.#byOrigin.set(origin, nonce);
    return true;
  }
}
