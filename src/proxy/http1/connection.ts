/**
 * One keep-alive connection to an upstream: a socket, node's llhttp parser reading its answers, and
 * at most one request on it at a time (no pipelining: a pipelined request would wait behind a slow
 * one, and an upstream that closes a socket would take the requests queued on it along, RFC 9112
 * §9.3.2). The connection writes the request (request-head.ts frames it), passes the answer to the
 * request's handler as it is parsed, and tells its pool when it can carry another request.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { responseParser, type Http1Parser, type ParserCallbacks } from './llhttp.js';
import { requestHead, type BodyFraming } from './request-head.js';

/** What the gateway hands the pool: one request. */
export interface Http1Request {
  readonly method: string;
  readonly path: string;
  /** A flat name/value list, written as it is (the connection adds Connection and the body's framing). */
  readonly headers: string[];
  /** The caller's body as a stream, or buffered, or none. */
  readonly body: IncomingMessage | Buffer | null;
  /** The protocol an upgrade request asks for; the head then says `connection: upgrade`. */
  readonly upgrade?: string | undefined;
  /**
   * timeouts.responseMs: the wait for the final head once the request has been written (at once for
   * a request without a body or with a buffered one, else once the caller's body has all been sent).
   * Connecting has its own time-out, and a slow upload the caller's own request time-out.
   */
  readonly headersTimeoutMs: number;
}

/** The request's owner, told what happens to it in this order: connect, interim and final heads, data, complete or error. */
export interface Http1Handler {
  /** The request has a connection and is about to be written; `abort` ends it (with onError) at any time after. */
  onConnect(abort: (error: Error) => void): void;
  /**
   * A head: interim (1xx but 101) ones too, each before the final one. Returns false to stop reading
   * until `resume` is called (the caller's side is full).
   */
  onHeaders(status: number, rawHeaders: string[], resume: () => void, reason: string): boolean;
  /**
   * The upstream switched protocols on an upgrade request: the socket is the handler's now, paused,
   * with the bytes read after the 101 put back at its front; reading it (pipe, resume) starts with them.
   */
  onUpgrade(status: number, rawHeaders: string[], socket: Duplex): void;
  /** The read that carried the final head has been parsed and the answer has not ended yet. */
  onReadEnd(): void;
  /** A piece of the final answer's body. Returns false to stop reading until `resume`. */
  onData(chunk: Buffer): boolean;
  /** The answer ended; `trailers` are its trailer lines (empty without). */
  onComplete(trailers: string[]): void;
  onError(error: Error): void;
}

/** The pool a connection reports to. */
export interface ConnectionOwner {
  /** The connection can take another request. */
  released(connection: UpstreamConnection): void;
  /** The connection is gone (closed, failed, upgraded); `error` when it failed before it ever connected. */
  removed(connection: UpstreamConnection, connectError: Error | undefined): void;
}

/** A socket error with the code it is classified by (upstream-failure.ts). */
function socketError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The code of a connect that did not complete within timeouts.connectMs (as undici named it: logs and traces keep it). */
export const CONNECT_TIMEOUT_CODE = 'UND_ERR_CONNECT_TIMEOUT';
/** The code of a final head that did not come within timeouts.responseMs (as undici named it). */
export const HEAD_TIMEOUT_CODE = 'UND_ERR_HEADERS_TIMEOUT';
/** An answer no caller may be given: an unasked 101, say. The request fails as on a broken upstream. */
export const UNUSABLE_ANSWER_CODE = 'EPROTO';

type Parser = Http1Parser & { owner: UpstreamConnection };

const CALLBACKS: ParserCallbacks<Parser> = {
  onHeaders(headers) {
    this.owner.flushed.push(...headers);
  },
  onHeadersComplete(_major, _minor, headers, _method, _url, status, reason, _upgrade, shouldKeepAlive) {
    return this.owner.head(headers, status, reason ?? '', shouldKeepAlive);
  },
  onBody(chunk) {
    this.owner.body(chunk);
  },
  onMessageComplete() {
    this.owner.complete();
  },
  onExecute(result) {
    this.owner.parsed(result);
  },
};

/** A socket's native stream, as node's net keeps it (`socket._handle`). */
interface StreamHandle {
  readonly isStreamBase?: boolean;
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

function onSocketData(this: Socket & { connection: UpstreamConnection }, chunk: Buffer): void {
  this.connection.read(chunk);
}

function onSocketEnd(this: Socket & { connection: UpstreamConnection }): void {
  this.connection.ended();
}

function onSocketError(this: Socket & { connection: UpstreamConnection }, error: Error): void {
  this.connection.failed(error);
}

function onSocketClose(this: Socket & { connection: UpstreamConnection }): void {
  this.connection.closed();
}

function onConnectTimeout(this: Socket & { connection: UpstreamConnection }): void {
  this.destroy(socketError('connecting to the upstream timed out', CONNECT_TIMEOUT_CODE));
}

/**
 * The head's deadline, one timer per connection that is re-armed only when it fires early: a
 * request stores when its deadline falls (one clock read) instead of setting and clearing a timer
 * of its own (about 1 µs a request, docs/performance.md).
 */
function onDeadlineTimer(connection: UpstreamConnection): void {
  connection.deadlineTimerFired();
}

function onSocketDrain(this: Socket & { connection: UpstreamConnection }): void {
  this.connection.drained();
}

export class UpstreamConnection {
  readonly socket: Socket & { connection: UpstreamConnection };
  readonly #owner: ConnectionOwner;
  readonly #parser: Parser;
  #connected = false;
  /** The request on this connection, until its answer is complete or it fails. */
  #handler: Http1Handler | undefined;
  #request: Http1Request | undefined;
  /** Header lines the parser flushed early (a long head) or trailers (after the body). */
  flushed: string[] = [];
  /** The current answer is an interim one (its message end is not the request's). */
  #interim = false;
  #finalSeen = false;
  /** The upstream lets the connection carry another request after this answer. */
  #reusable = true;
  /** The request's body has all been written (there was none, or it was buffered, or the stream ended). */
  #bodyWritten = true;
  #framing: BodyFraming = 'none';
  /** The caller's body while it is being streamed into this request. */
  #streaming: IncomingMessage | undefined;
  /** The answer ended while this read was being parsed: released once the parser has returned. */
  #answered = false;
  /** An upgrade's 101 was read: the rest of the read belongs to the tunnel. */
  #upgraded: { rawHeaders: string[]; status: number } | undefined;
  /** When the current request's head deadline falls (performance.now()), 0 when none runs. */
  #deadlineAt = 0;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** When #deadlineTimer fires. */
  #timerAt = 0;
  /** The final head was read in the read being parsed (see read). */
  #headInRead = false;
  /** The last time the connection went idle (for the pool's idle sweep). */
  idleSince = 0;
  /** The parser reads the socket's stream itself (see #consume); else each read comes as a 'data' event. */
  #consumed: StreamHandle | undefined;
  readonly resume = (): void => {
    this.#resumeReading();
  };
  /** Bytes of the current request have gone to the socket: failing it now closes the connection. */
  #written = false;
  readonly #abort = (error: Error): void => {
    if (this.#handler === undefined) return;
    if (this.#written) return this.#fail(error);
    // Nothing was written (the caller left while the request waited): the connection stays good.
    const handler = this.#handler;
    this.#handler = undefined;
    this.#request = undefined;
    handler.onError(error);
    this.#owner.released(this);
  };

  constructor(socket: Socket, owner: ConnectionOwner, connectMs: number, secure: boolean) {
    this.socket = Object.assign(socket, { connection: this });
    this.#owner = owner;
    this.#parser = responseParser<UpstreamConnection>(this, CALLBACKS);
    socket.setNoDelay(true);
    socket.setTimeout(connectMs, onConnectTimeout);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      this.#connected = true;
      socket.setTimeout(0);
      this.#consume();
    });
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
  }

  get busy(): boolean {
    return this.#handler !== undefined;
  }

  /** Sends `request` (the connection is idle); `handler` hears of its answer. */
  send(request: Http1Request, handler: Http1Handler): void {
    this.#handler = handler;
    this.#request = request;
    this.#finalSeen = false;
    this.#reusable = true;
    this.#written = false;
    handler.onConnect(this.#abort);
    // Aborted at once (the caller left while it waited for a connection): nothing was written.
    if (this.#handler !== handler) return;
    const { body } = request;
    if (body === null || Buffer.isBuffer(body)) return this.#write(request, body);
    // Node's server hands a request over at its head, before it parses the rest of the same read: a
    // streamed body is looked at once that has been done (see #writeStreamed).
    process.nextTick(writeStreamed, this, request, handler);
  }

  /**
   * A streamed body that has already ended without a byte (an empty chunked body: `0` and the blank
   * line) is no body: framed as none, as undici framed a stream it saw at its end. The stream is
   * still read to its end, which its owner waits for.
   */
  writeStreamed(request: Http1Request, handler: Http1Handler): void {
    // The request was aborted meanwhile: the connection went back to the pool or was closed.
    if (this.#handler !== handler) return;
    const body = request.body as IncomingMessage;
    if (body.complete && body.readableLength === 0) {
      body.resume();
      return this.#write(request, null);
    }
    this.#write(request, body);
  }

  #write(request: Http1Request, body: IncomingMessage | Buffer | null): void {
    const { method } = request;
    const stream = body !== null && !Buffer.isBuffer(body);
    // A HEAD answer's Content-Length is not followed by a body; an upstream that sends one anyway
    // would make the next answer on this connection garbage. undici closed after HEAD; so does this.
    const close = method === 'HEAD';
    let head;
    try {
      head = requestHead(
        method,
        request.path,
        request.headers,
        body === null ? 'none' : stream ? 'stream' : body.length,
        close ? 'close' : 'keep-alive',
        request.upgrade,
      );
    } catch (error) {
      const handler = this.#handler!;
      this.#handler = undefined;
      this.#request = undefined;
      handler.onError(error as Error);
      return this.#owner.released(this);
    }
    // An upgrade's connection is the tunnel's or, refused, not reused (as undici did).
    if (close || request.upgrade !== undefined) this.#reusable = false;
    this.#framing = head.framing;
    this.#written = true;
    const socket = this.socket;
    if (!stream) {
      this.#bodyWritten = true;
      if (body === null || body.length === 0) socket.write(head.text, 'latin1');
      else {
        socket.cork();
        socket.write(head.text, 'latin1');
        socket.write(body);
        socket.uncork();
      }
      return this.#armDeadline();
    }
    this.#bodyWritten = false;
    socket.write(head.text, 'latin1');
    const caller = body as IncomingMessage & { upstream?: UpstreamConnection };
    this.#streaming = caller;
    caller.upstream = this;
    caller.on('data', onCallerData);
    caller.once('end', onCallerEnd);
    caller.once('close', onCallerClose);
  }

  /** A piece of the caller's body: written, framed; the caller is paused while the socket is full. */
  writeBody(chunk: Buffer, caller: IncomingMessage): void {
    const socket = this.socket;
    let flowing: boolean;
    if (this.#framing === 'chunked') {
      if (chunk.length === 0) return;
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      flowing = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else flowing = socket.write(chunk);
    if (!flowing) caller.pause();
  }

  /** The caller's body ended: the chunked coding is closed, and the request is all written. */
  endBody(caller: IncomingMessage): void {
    this.#detachCaller(caller);
    this.#bodyWritten = true;
    if (this.#framing === 'chunked') this.socket.write('0\r\n\r\n', 'latin1');
    if (this.#answered) this.#release();
    else if (!this.#finalSeen) this.#armDeadline();
  }

  /** The caller's body stopped before its end (the caller went away): the request cannot be completed. */
  bodyCut(caller: IncomingMessage): void {
    this.#detachCaller(caller);
    if (!this.#bodyWritten) this.#fail(socketError('the caller went away before its body was sent', 'ECONNRESET'));
  }

  drained(): void {
    this.#streaming?.resume();
  }

  #detachCaller(caller: IncomingMessage): void {
    this.#streaming = undefined;
    caller.off('data', onCallerData);
    caller.off('end', onCallerEnd);
    caller.off('close', onCallerClose);
    (caller as IncomingMessage & { upstream?: UpstreamConnection }).upstream = undefined;
  }

  /**
   * Node's HTTP server has its parser read the socket's native stream (consume): a read then costs
   * no JavaScript callback, Buffer or 'data' event before the parser sees it, about a tenth of
   * the upstream client's work per request (docs/performance.md). End-of-stream and errors still
   * come as the socket's 'end' and 'error'; a socket without such a stream is read through 'data'.
   */
  #consume(): void {
    const handle = (this.socket as unknown as { _handle?: StreamHandle & { _consumed?: boolean } })._handle;
    if (handle?.isStreamBase !== true || handle._consumed === true) return;
    handle._consumed = true;
    this.#consumed = handle;
    this.#parser.consume(handle);
  }

  #pauseReading(): void {
    const handle = this.#consumed;
    if (handle === undefined) return void this.socket.pause();
    if (!handle.reading) return;
    handle.reading = false;
    handle.readStop();
  }

  #resumeReading(): void {
    const handle = this.#consumed;
    if (handle === undefined) return void this.socket.resume();
    if (handle.reading || this.socket.destroyed) return;
    handle.reading = true;
    handle.readStart();
  }

  read(chunk: Buffer): void {
    // Bytes on a connection without a request: an upstream that answers what was not asked.
    if (this.#handler === undefined && !this.#answered) return void this.socket.destroy();
    const result = this.#parser.execute(chunk);
    if (typeof result !== 'number') return this.#fail(result);
    if (this.#upgraded !== undefined) return this.#hand(chunk.subarray(result));
    this.#afterRead();
  }

  /** A read the parser took from the socket's stream itself (#consume) has been parsed. */
  parsed(result: number | Error): void {
    if (typeof result !== 'number') return this.#fail(result);
    if (this.#upgraded !== undefined) {
      const rest = this.#parser.getCurrentBuffer().subarray(result);
      return this.#hand(Buffer.from(rest));
    }
    // Bytes on a connection without a request: an upstream that answers what was not asked.
    if (this.#handler === undefined && !this.#answered) return void this.socket.destroy();
    this.#afterRead();
  }

  #afterRead(): void {
    if (this.#answered) {
      if (this.#bodyWritten) this.#release();
    } else if (this.#headInRead) this.#handler?.onReadEnd();
    this.#headInRead = false;
  }

  /** Starts the head's deadline for the request just written. */
  #armDeadline(): void {
    const ms = this.#request!.headersTimeoutMs;
    const now = performance.now();
    this.#deadlineAt = now + ms;
    // The timer already set fires no later than this deadline: it looks again then.
    if (this.#deadlineTimer !== undefined && this.#timerAt <= this.#deadlineAt) return;
    clearTimeout(this.#deadlineTimer);
    this.#timerAt = now + ms;
    this.#deadlineTimer = setTimeout(onDeadlineTimer, ms, this).unref();
  }

  deadlineTimerFired(): void {
    this.#deadlineTimer = undefined;
    if (this.#deadlineAt === 0) return;
    const now = performance.now();
    const left = this.#deadlineAt - now;
    // Timers run on a millisecond clock: a deadline less than a millisecond away has passed.
    if (left < 1) return this.#fail(socketError('the upstream did not answer in time', HEAD_TIMEOUT_CODE));
    this.#timerAt = this.#deadlineAt;
    this.#deadlineTimer = setTimeout(onDeadlineTimer, Math.ceil(left), this).unref();
  }

  /** The upstream closed its side: an answer that runs to the close ends here; any other request fails. */
  ended(): void {
    if (this.#handler !== undefined) {
      const error = this.#parser.finish();
      if (error !== undefined) return this.#fail(error);
      // An answer that ran to the close has ended: the connection is not reused.
      if (this.#answered) this.#reusable = false;
    }
    if (this.#handler !== undefined)
      this.#fail(socketError('the upstream closed the connection before its answer was complete', 'UND_ERR_SOCKET'));
    this.socket.destroy();
  }

  failed(error: Error): void {
    this.#fail(error);
  }

  closed(): void {
    if (this.#handler !== undefined) this.#fail(socketError('the upstream connection closed', 'UND_ERR_SOCKET'));
    if (this.#streaming !== undefined) this.#detachCaller(this.#streaming);
    clearTimeout(this.#deadlineTimer);
    this.#releaseParser();
    this.#owner.removed(this, this.#connected ? undefined : this.#connectError);
  }

  #connectError: Error | undefined;

  /**
   * The native parser is freed explicitly, as node's own http code does (it is not garbage-collected
   * while it lives), once the stack of any callback of its own has unwound.
   */
  #releaseParser(): void {
    if (this.#consumed !== undefined) {
      this.#parser.unconsume();
      this.#consumed = undefined;
    }
    this.#parser.owner = undefined as unknown as UpstreamConnection;
    setImmediate(closeParser, this.#parser);
  }

  /** A head from the parser: returns what it should read next (see ParserCallbacks.onHeadersComplete). */
  head(headers: string[] | undefined, status: number, reason: string, keepAlive: boolean): number {
    const handler = this.#handler;
    if (headers === undefined) {
      headers = this.flushed;
      this.flushed = [];
    }
    // An answer nobody asked for (on an idle connection, or after the request failed): the connection is garbage.
    if (handler === undefined) {
      this.#reusable = false;
      return 1;
    }
    if (status === 101) {
      if (this.#request?.upgrade === undefined) {
        this.#fail(socketError('the upstream switched protocols unasked', UNUSABLE_ANSWER_CODE));
        return 1;
      }
      this.#upgraded = { rawHeaders: headers, status };
      this.#deadlineAt = 0;
      return 2;
    }
    // RFC 9110 §15.2: interim answers come before the final one, each a message of its own without a body.
    if (status >= 100 && status < 200) {
      this.#interim = true;
      handler.onHeaders(status, headers, this.resume, reason);
      return 1;
    }
    this.#finalSeen = true;
    this.#deadlineAt = 0;
    this.#headInRead = true;
    if (!keepAlive) this.#reusable = false;
    if (!handler.onHeaders(status, headers, this.resume, reason)) this.#pauseReading();
    return this.#request?.method === 'HEAD' ? 1 : 0;
  }

  body(chunk: Buffer): void {
    const handler = this.#handler;
    if (handler === undefined || this.#interim) return;
    if (!handler.onData(chunk)) this.#pauseReading();
  }

  complete(): void {
    if (this.#interim) {
      this.#interim = false;
      return;
    }
    if (this.#handler === undefined || !this.#finalSeen) return;
    this.#answered = true;
    // An answer before the whole body was sent (a 413, say): the rest of the body is not sent, and
    // the request on the wire is incomplete, so the connection is not reused.
    if (this.#streaming !== undefined) {
      this.#detachCaller(this.#streaming);
      this.#bodyWritten = true;
      this.#reusable = false;
    }
    // Trailers are handed over now; the request is released once the parser has returned (read).
    const trailers = this.flushed;
    this.flushed = [];
    const handler = this.#handler;
    this.#handler = undefined;
    handler.onComplete(trailers);
  }

  /** The answer is complete and the body written: back to the pool, or closed if it cannot carry another. */
  #release(): void {
    this.#answered = false;
    this.#request = undefined;
    if (!this.#reusable || this.socket.destroyed) return void this.socket.destroy();
    this.#resumeReading();
    this.#owner.released(this);
  }

  /** The request fails (once): its handler hears of it, and the connection is closed. */
  #fail(error: Error): void {
    if (!this.#connected) this.#connectError ??= error;
    const handler = this.#handler;
    this.#handler = undefined;
    if (this.#streaming !== undefined) this.#detachCaller(this.#streaming);
    this.#request = undefined;
    this.#answered = false;
    this.#reusable = false;
    this.#deadlineAt = 0;
    this.socket.destroy();
    handler?.onError(error);
  }

  /** An upgrade: the socket leaves the pool for the handler, with the bytes read after the 101 given back to it. */
  #hand(rest: Buffer): void {
    const { rawHeaders, status } = this.#upgraded!;
    const handler = this.#handler!;
    this.#handler = undefined;
    this.#request = undefined;
    const socket = this.socket;
    if (this.#consumed !== undefined) {
      this.#parser.unconsume();
      this.#consumed = undefined;
    }
    socket.off('data', onSocketData);
    socket.off('end', onSocketEnd);
    socket.off('error', onSocketError);
    socket.off('close', onSocketClose);
    socket.off('drain', onSocketDrain);
    this.#owner.removed(this, undefined);
    clearTimeout(this.#deadlineTimer);
    this.#releaseParser();
    // Paused, so that the bytes read after the 101 wait for the tunnel's reader instead of going out
    // as a 'data' event nobody listens to yet; piping the socket resumes it.
    socket.pause();
    if (rest.length > 0) socket.unshift(rest);
    handler.onUpgrade(status, rawHeaders, socket);
  }
}

function writeStreamed(connection: UpstreamConnection, request: Http1Request, handler: Http1Handler): void {
  connection.writeStreamed(request, handler);
}

function closeParser(parser: Http1Parser): void {
  parser.close();
}

function onCallerData(this: IncomingMessage & { upstream?: UpstreamConnection }, chunk: Buffer): void {
  this.upstream?.writeBody(chunk, this);
}

function onCallerEnd(this: IncomingMessage & { upstream?: UpstreamConnection }): void {
  this.upstream?.endBody(this);
}

function onCallerClose(this: IncomingMessage & { upstream?: UpstreamConnection }): void {
  this.upstream?.bodyCut(this);
}
