/**
 * One request to an upstream through an undici pool, and its answer streamed to the caller. undici
 * hands over the upstream's header lines as it read them (raw, in order, each with its case), and
 * the caller's socket pushes back on the upstream: the pool stops reading while the caller's
 * response is full and goes on at its 'drain'.
 *
 * The call speaks undici's own handler interface (onConnect, onHeaders, onData, onComplete), the one
 * its client calls: a handler of the newer interface (onRequestStart, onResponseStart, ...) is
 * wrapped per request in an adapter that also builds a headers object from every answer's lines,
 * which the gateway needs only for a 401, on a DPoP route or for a 101 (see `headers`).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { util, type Dispatcher } from 'undici';
import { callerTrailers } from './headers.js';
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
  /** A flat name/value list, sent as it is (undici adds Connection and the body's framing). */
  readonly headers: string[];
  /** The caller's body as a stream, or buffered for a replay, or none. */
  readonly body: IncomingMessage | Buffer | null;
  /** The wait for the response head once the request is sent; a body may then take its time (it streams). */
  readonly headersTimeoutMs: number;
  /** The protocol an upgrade request asks for (the caller's Upgrade); undici then sends Connection: upgrade. */
  readonly upgrade?: string | undefined;
}

const CALLER_LEFT = 'the caller went away';
const EMPTY = Buffer.alloc(0);
/** The code undici gives its own response-head time-out; the gateway keeps that deadline itself (see #arm). */
export const HEAD_TIMEOUT_CODE = 'UND_ERR_HEADERS_TIMEOUT';
/** An answer no caller may be given (a status outside 100..599); the request fails as on a broken upstream. */
export const UNUSABLE_ANSWER_CODE = 'EPROTO';

/** The head's deadline passed: abort, as undici would on its own time-out. */
function onDeadline(call: UpstreamCall<unknown>): void {
  call.abort(Object.assign(new Error('the upstream did not answer in time'), { code: HEAD_TIMEOUT_CODE }));
}

/** Sends the caller the head now if no body bytes carried it out yet (a long poll, a quiet upstream). */
function flushHeadIfIdle(call: UpstreamCall<unknown>): void {
  call.flushHeadIfIdle();
}

/**
 * A 103's Link fields, sent to the caller ahead of the final answer: Node's writeEarlyHints writes
 * only Link (other fields of a 103 are dropped) and refuses a value that is not one well-formed link
 * (that 103 is then dropped). Never to an HTTP/1.0 caller (RFC 9110 §15.2), nor once a head is out.
 */
function relayEarlyHints(res: ServerResponse, raw: readonly Buffer[]): void {
  if (res.headersSent || res.destroyed || res.req.httpVersionMajor !== 1 || res.req.httpVersionMinor < 1) return;
  const links: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toString('latin1').toLowerCase() === 'link') links.push(raw[i + 1]!.toString('latin1'));
  }
  if (links.length === 0) return;
  try {
    res.writeEarlyHints({ link: links });
  } catch {
    // a Link value Node will not write: this 103 is passed over
  }
}

/** The upstream's header lines as undici read them: raw, in order, each with its case. */
function rawList(raw: readonly Buffer[]): string[] {
  const list: string[] = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) list[i] = raw[i]!.toString('latin1');
  return list;
}

export class UpstreamCall<C> implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #context: C;
  readonly #events: UpstreamCallEvents<C>;
  /** undici's abort for this request, once it is on a connection. */
  #abort: ((error: Error) => void) | undefined;
  #cancelled = false;
  /** Set when the owner dropped the answer: its body is read and thrown away, its errors ignored. */
  #dropped = false;
  /** undici's resume for a paused answer, from its head. */
  #resume: (() => void) | undefined;
  #onDrain: (() => void) | undefined;
  #request: UpstreamRequest | undefined;
  #deadline: NodeJS.Timeout | undefined;
  /** Until the final head arrives or the call fails: the time a deadline may run in. */
  #waiting = true;
  /** Body bytes have been passed to the caller's response (they carry its head out). */
  #bodySent = false;
  /** undici has ended the request (settled has been told). */
  #ended = false;
  /** The final head's (or the 101's) header lines, as they came. */
  #rawHeaders: readonly Buffer[] = [];
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
    return (this.#headers ??= util.parseHeaders(this.#rawHeaders as Buffer[]) as IncomingHttpHeaders);
  }

  /** Sends `request` through `pool`. A request undici refuses to write fails the call, as does any other error. */
  send(pool: UpstreamPool, request: UpstreamRequest): void {
    this.#request = request;
    pool.dispatch(
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body,
        // The head's deadline is the gateway's own timer (#arm): undici checks its timers about twice
        // a second, and a deadline should not be a second late. A body may stream slowly, both ways.
        headersTimeout: 0,
        bodyTimeout: 0,
        upgrade: request.upgrade,
      },
      this,
    );
  }

  /** The caller went away: abort the request, or keep it from starting if it still waits for a socket. */
  cancel(): void {
    this.#cancelled = true;
    this.abort(new Error(CALLER_LEFT));
  }

  /** Ends the request with `error` (reported through `failed` unless dropped); no-op once it has ended. */
  abort(error: Error): void {
    this.#settle();
    if (!this.#ended) this.#abort?.(error);
  }

  flushHeadIfIdle(): void {
    const res = this.#res;
    // An empty write, not flushHeaders(): Node sends the head of a flushHeaders() as UTF-8, which
    // turns a header's obs-text byte (RFC 9110 §5.5, 0x80-0xff) into two; a buffer write sends it
    // as Latin-1, byte for byte. A head without a body (HEAD, 204, 304) goes out with end().
    if (!this.#bodySent && !this.#dropped && !res.writableEnded && !res.destroyed) res.write(EMPTY);
  }

  /**
   * timeouts.responseMs runs from when the request is sent: at once for a request without a body
   * or with a buffered one (written with its head), else once the caller's body has all been read.
   * Connecting has its own time-out, and a slow upload the caller's own request time-out.
   */
  #arm(): void {
    if (this.#waiting) this.#deadline = setTimeout(onDeadline, this.#request!.headersTimeoutMs, this);
  }

  #settle(): void {
    this.#waiting = false;
    clearTimeout(this.#deadline);
  }

  onConnect(abort: (error?: Error) => void): void {
    this.#abort = abort;
    if (this.#cancelled) return abort(new Error(CALLER_LEFT));
    const body = this.#request!.body;
    if (body === null || Buffer.isBuffer(body) || body.readableEnded) this.#arm();
    else body.once('end', () => this.#arm());
  }

  /** Returns false to pause the answer until `resume` is called (the caller's response is full). */
  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void, reason = ''): boolean {
    // RFC 9110 §15: a status is 100..599 ("099" parses as 99, "999" as 999); no caller may get another.
    if (status < 100 || status > 599) {
      this.abort(Object.assign(new Error(`the upstream answered HTTP ${status}`), { code: UNUSABLE_ANSWER_CODE }));
      return true;
    }
    // RFC 9110 §15.2: a proxy passes an interim answer on. A 103 Early Hints (RFC 8297) goes to the
    // caller; another (102) is passed over. The final answer follows within the same deadline. An
    // unasked 101 never gets here: undici fails the request and closes the socket ("bad upgrade"),
    // and so it does on an unasked 100 (see test/core-forwarding).
    if (status < 200) {
      if (status === 103) relayEarlyHints(this.#res, rawHeaders);
      return true;
    }
    this.#settle();
    this.#resume = resume;
    this.#rawHeaders = rawHeaders;
    if (!this.#events.headers(this.#context, this, status, reason, rawList(rawHeaders))) this.#dropped = true;
    // Node sends a response head with the first body bytes. Those of this answer, if any came with
    // its head, are passed on before the next tick; an answer still without a body then has its head
    // sent alone, so that a long poll or a quiet upstream does not keep the status from the caller.
    else process.nextTick(flushHeadIfIdle, this);
    return true;
  }

  /** Only an upgrade request gets here; undici fails any other that meets a 101 ("bad upgrade"). */
  onUpgrade(_status: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.#settle();
    this.#rawHeaders = (rawHeaders ?? []) as Buffer[];
    // undici is done with the request: from here on the socket is a tunnel's, not an upstream request.
    if (this.#cancelled) socket.destroy();
    else this.#events.upgraded(this.#context, this, rawList(this.#rawHeaders), socket);
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

  onComplete(rawTrailers: string[] | Buffer[] | null): void {
    if (!this.#dropped) {
      // RFC 9110 §6.5: the upstream's trailer fields go on after the body. Node sends them on a chunked
      // answer (on any other they cannot be, and are dropped) and refuses a field it cannot write.
      if (rawTrailers !== null && rawTrailers.length > 0) {
        try {
          this.#res.addTrailers(callerTrailers(rawTrailers as Buffer[]));
        } catch {
          // a field Node will not write (a control character): the answer ends without trailers
        }
      }
      this.#res.end();
    }
    this.#end();
  }

  onError(error: Error): void {
    this.#settle();
    if (!this.#dropped) this.#events.failed(this.#context, this, error);
    this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#events.settled(this.#context, this);
  }
}
