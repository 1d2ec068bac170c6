/**
 * One request to an upstream through a pool (http1/), and its answer streamed to the caller. The
 * pool hands over the upstream's header lines as the parser read them (raw, in order, each with its
 * case), and the caller's socket pushes back on the upstream: the connection stops reading while
 * the caller's response is full and goes on at its 'drain'. A headers object is built from an
 * answer's lines only when the gateway reads it: for a 401, on a DPoP route or for a 101 (`headers`).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { callerTrailers } from './headers.js';
import { HEAD_TIMEOUT_CODE, UNUSABLE_ANSWER_CODE, type Http1Handler } from './http1/connection.js';
import type { UpstreamPool } from './upstream-pool.js';

/** What the owner of a call decides and learns; shared functions, so a call costs no closures. */
export interface UpstreamCallEvents<C> {
  /**
   * The upstream's final answer arrived. Returns true to stream its body to the caller (the owner
   * has written the caller's head), false to drop it (the owner replays the request instead).
   */
  headers(context: C, call: UpstreamCall<C>, status: number, reason: string, rawHeaders: string[]): boolean;
  /** The call failed: no connection, a time-out, a reset, an answer no HTTP peer may send. */
  failed(context: C, call: UpstreamCall<C>, error: Error): void;
  /**
   * undici is done with the request, once per call sent: its answer ended (passed on or dropped) or
   * it failed. Until then the call holds its caller's response, even after the caller has gone.
   */
  settled(context: C, call: UpstreamCall<C>): void;
  /**
   * The upstream switched protocols (101) on an upgrade request: `socket` is its connection, out
   * of the pool, with any bytes that came after the head still to be read. The owner now has it.
   */
  upgraded(context: C, call: UpstreamCall<C>, rawHeaders: string[], socket: Duplex): void;
}

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** A flat name/value list, sent as it is (the pool adds Connection and the body's framing). */
  readonly headers: string[];
  /** The caller's body as a stream, or buffered for a replay, or none. */
  readonly body: IncomingMessage | Buffer | null;
  /** The wait for the response head once the request is sent; a body may then take its time (it streams). */
  readonly headersTimeoutMs: number;
  /** The protocol an upgrade request asks for (the caller's Upgrade); the pool then sends Connection: upgrade. */
  readonly upgrade?: string | undefined;
}

const CALLER_LEFT = 'the caller went away';
const EMPTY = Buffer.alloc(0);
/** The timeouts.responseMs deadline passed; an answer no caller may be given (a status outside 100..599, an unasked 101). */
export { HEAD_TIMEOUT_CODE, UNUSABLE_ANSWER_CODE };

/**
 * A 103's Link fields, sent to the caller ahead of the final answer: Node's writeEarlyHints writes
 * only Link (other fields of a 103 are dropped) and refuses a value that is not one well-formed link
 * (that 103 is then dropped). Never to an HTTP/1.0 caller (RFC 9110 §15.2), nor once a head is out.
 */
function relayEarlyHints(res: ServerResponse, raw: readonly string[]): void {
  if (res.headersSent || res.destroyed || res.req.httpVersionMajor !== 1 || res.req.httpVersionMinor < 1) return;
  const links: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'link') links.push(raw[i + 1]!);
  }
  if (links.length === 0) return;
  try {
    res.writeEarlyHints({ link: links });
  } catch {
    // a Link value Node will not write: this 103 is passed over
  }
}

/**
 * Header lines as an object, as undici built it: names lower-cased, a repeated line's values in an
 * array (Set-Cookie, a second WWW-Authenticate), `__proto__` an own property like any other name.
 */
export function headersObject(raw: readonly string[]): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    else if (typeof seen === 'string') headers[name] = [seen, value];
    else seen.push(value);
  }
  return headers;
}

export class UpstreamCall<C> implements Http1Handler {
  readonly #res: ServerResponse;
  readonly #context: C;
  readonly #events: UpstreamCallEvents<C>;
  /** The connection's abort for this request, once it is on one. */
  #abort: ((error: Error) => void) | undefined;
  #cancelled = false;
  /** Set when the owner dropped the answer: its body is read and thrown away, its errors ignored. */
  #dropped = false;
  /** The connection's resume for a paused answer, from its head. */
  #resume: (() => void) | undefined;
  #onDrain: (() => void) | undefined;
  /** Body bytes have been passed to the caller's response (they carry its head out). */
  #bodySent = false;
  /** The pool has ended the request (settled has been told). */
  #ended = false;
  /** The final head's (or the 101's) header lines, as they came. */
  #rawHeaders: readonly string[] = [];
  #headers: IncomingHttpHeaders | undefined;

  constructor(res: ServerResponse, context: C, events: UpstreamCallEvents<C>) {
    this.#res = res;
    this.#context = context;
    this.#events = events;
  }

  /**
   * The answer's head as an object (lower-cased names, repeated lines as arrays), built on first
   * use: the owner reads it only for the few answers it looks into (a 401, a DPoP nonce, a 101).
   */
  get headers(): IncomingHttpHeaders {
    return (this.#headers ??= headersObject(this.#rawHeaders));
  }

  /** Sends `request` through `pool`. A request that cannot be written fails the call, as does any other error. */
  send(pool: UpstreamPool, request: UpstreamRequest): void {
    // The connection keeps the head's deadline (headersTimeoutMs); a body may stream slowly, both ways.
    pool.dispatch(request, this);
  }

  /** The caller went away: abort the request, or keep it from starting if it still waits for a socket. */
  cancel(): void {
    this.#cancelled = true;
    this.abort(new Error(CALLER_LEFT));
  }

  /** Ends the request with `error` (reported through `failed` unless dropped); no-op once it has ended. */
  abort(error: Error): void {
    if (!this.#ended) this.#abort?.(error);
  }

  /**
   * The read that carried the final head has been parsed, and the answer goes on. Node sends a
   * response head with the first body bytes; an answer still without a body has its head sent
   * alone now, so that a long poll or a quiet upstream does not keep the status from the caller.
   */
  onReadEnd(): void {
    const res = this.#res;
    // An empty write, not flushHeaders(): Node sends the head of a flushHeaders() as UTF-8, which
    // turns a header's obs-text byte (RFC 9110 §5.5, 0x80-0xff) into two; a buffer write sends it
    // as Latin-1, byte for byte. A head without a body (HEAD, 204, 304) goes out with end().
    if (!this.#bodySent && !this.#dropped && !res.writableEnded && !res.destroyed) res.write(EMPTY);
  }

  onConnect(abort: (error: Error) => void): void {
    this.#abort = abort;
    if (this.#cancelled) abort(new Error(CALLER_LEFT));
  }

  /** Returns false to pause the answer until `resume` is called (the caller's response is full). */
  onHeaders(status: number, rawHeaders: string[], resume: () => void, reason: string): boolean {
    // RFC 9110 §15: a status is 100..599 ("099" parses as 99, "999" as 999); no caller may get another.
    if (status < 100 || status > 599) {
      this.abort(Object.assign(new Error(`the upstream answered HTTP ${status}`), { code: UNUSABLE_ANSWER_CODE }));
      return true;
    }
    // RFC 9110 §15.2: a proxy passes an interim answer on. A 103 Early Hints (RFC 8297) goes to the
    // caller; another (100, 102) is passed over. The final answer follows within the same deadline.
    // An unasked 101 never gets here: the connection fails the request and closes the socket.
    if (status < 200) {
      if (status === 103) relayEarlyHints(this.#res, rawHeaders);
      return true;
    }
    this.#resume = resume;
    this.#rawHeaders = rawHeaders;
    // The head goes out with the first body bytes, or alone once its read has been parsed (onReadEnd).
    if (!this.#events.headers(this.#context, this, status, reason, rawHeaders)) this.#dropped = true;
    return true;
  }

  /** Only an upgrade request gets here; the connection fails any other that meets a 101. */
  onUpgrade(_status: number, rawHeaders: string[], socket: Duplex): void {
    this.#rawHeaders = rawHeaders;
    // The pool is done with the request: from here on the socket is a tunnel's, not an upstream request.
    if (this.#cancelled) socket.destroy();
    else this.#events.upgraded(this.#context, this, rawHeaders, socket);
    this.#end();
  }

  /** Returns false to pause the answer: the caller's response is full; its 'drain' resumes it. */
  onData(chunk: Buffer): boolean {
    if (this.#dropped) return true;
    this.#bodySent = true;
    if (this.#res.write(chunk)) return true;
    this.#onDrain ??= () => this.#resume?.();
    this.#res.once('drain', this.#onDrain);
    return false;
  }

  onComplete(rawTrailers: string[]): void {
    if (!this.#dropped) {
      // RFC 9110 §6.5: the upstream's trailer fields go on after the body. Node sends them on a chunked
      // answer (on any other they cannot be, and are dropped) and refuses a field it cannot write.
      if (rawTrailers.length > 0) {
        try {
          this.#res.addTrailers(callerTrailers(rawTrailers));
        } catch {
          // a field Node will not write (a control character): the answer ends without trailers
        }
      }
      this.#res.end();
    }
    this.#end();
  }

  onError(error: Error): void {
    if (!this.#dropped) this.#events.failed(this.#context, this, error);
    this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#events.settled(this.#context, this);
  }
}
