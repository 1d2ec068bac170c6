/**
 * `clientAssertion`: a JWT another issuer made (a Kubernetes projected service-account token, a
 * SPIFFE JWT-SVID, a CI OIDC token) sent as the client assertion (RFC 7521 §4.2, RFC 7523 §2.2).
 * The file is read when a token is needed and read again whenever it changed (its device, inode,
 * size or mtime: Kubernetes swaps a symlink, editors rename, scripts write in place), so a
 * rotation needs no reload. An assertion past its `exp` is never sent. Its text is a credential:
 * it never reaches a log line, a detail or a metric; only the file's name does.
 */
import { decodeJwt } from 'jose';
import type { ClientAuth } from '../config/types.js';
import { TokenError } from '../errors/gateway.js';
import { readRegularFile } from '../config/read.js';
import { identityOf } from '../config/watched-file.js';

export interface ClientAssertionOptions {
  clientId: string;
  /** Absolute path of the file. */
  file: string;
  /** The file as the config names it: what details show. */
  configured: string;
  /** client_assertion_type. */
  type: string;
}

/** Why no assertion can be sent: nothing reached the token endpoint, and the caller is told which file to look at. */
function unavailable(detail: string): TokenError {
  // Not retryable: another attempt within the caller's budget reads the same file. Retry-After
  // because TOKEN_ENDPOINT_UNAVAILABLE always carries one (docs/errors.md).
  return new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'credentials_unavailable', { detail, retryAfter: 1 });
}

/**
 * The file's content, read again only when its identity (config/watched-file.ts) changed since the
 * last read. No watch: the file is only needed when a token is, and one stat then is enough.
 */
class AssertionFile {
  #identity: string | undefined;
  #text: string | undefined;

  constructor(readonly path: string) {}

  async read(): Promise<string> {
    const identity = await identityOf(this.path);
    if (this.#text !== undefined && identity !== undefined && identity === this.#identity) return this.#text;
    const text = (await readRegularFile(this.path)).trim();
    this.#identity = identity;
    this.#text = text;
    return text;
  }
}

export function clientAssertionFile(options: ClientAssertionOptions): ClientAuth {
  const { clientId, configured, type } = options;
  const file = new AssertionFile(options.file);
  return {
    method: 'client_assertion',
    async apply(body) {
      let assertion: string;
      try {
        assertion = await file.read();
      } catch (error) {
        throw unavailable(`cannot read the client assertion file ${configured}: ${(error as Error).message}`);
      }
      let exp: unknown;
      try {
        exp = decodeJwt(assertion).exp;
      } catch {
        throw unavailable(`the client assertion file ${configured} does not hold a JWT`);
      }
      // RFC 7523 §3 item 4: the server must reject an expired assertion; sending one would only spend a request.
      if (typeof exp === 'number' && exp * 1000 <= Date.now()) {
        const ago = Math.round(Date.now() / 1000 - exp);
        throw unavailable(
          `the client assertion in ${configured} expired at ${new Date(exp * 1000).toISOString()} (${ago} s ago); ` +
            'nothing was sent: whatever writes that file has not replaced it',
        );
      }
      body.set('client_id', clientId);
      body.set('client_assertion_type', type);
      body.set('client_assertion', assertion);
    },
  };
}
