/**
 * One keep-alive connection to an upstream: a socket, node's llhttp parser reading its answers, and
 * at most one request on it at a time (no pipelining: a pipelined request would wait behind a slow
 * one, and an upstream that closes a socket would take the requests queued on it along, RFC 9112
 * §9.3.2). The connection writes the request (request-head.ts frames it), passes the answer to the
 * request's handler as it is parsed, and tells its pool when it can carry another request.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { responseParser, type Http1Parser, type ParserCallbacks } from './llhttp.js';
import { requestHead } from './request-head.js';
import { HeadDeadline } from './deadline.js';
import { SocketReads } from './socket-reads.js';
import { StreamedBody, type BodyOwner } from './streamed-body.js';
import {
  HEAD_TIMEOUT_CODE,
  socketError,
  UNUSABLE_ANSWER_CODE,
  CONNECT_TIMEOUT_CODE,
  type ConnectionOwner,
  type Http1Handler,
  type Http1Request,
  type PooledConnection,
} from './types.js';

export type { ConnectionOwner, Http1Handler, Http1Request } from './types.js';
export { CONNECT_TIMEOUT_CODE, HEAD_TIMEOUT_CODE, UNUSABLE_ANSWER_CODE } from './types.js';

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

function onSocketDrain(this: Socket & { connection: UpstreamConnection }): void {
  this.connection.drained();
}

export class UpstreamConnection implements PooledConnection, BodyOwner {
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
  /** The caller's body while it is being streamed into this request. */
  readonly #body: StreamedBody;
  /** The answer ended while this read was being parsed: released once the parser has returned. */
  #answered = false;
  /** An upgrade's 101 was read: the rest of the read belongs to the tunnel. */
  #upgraded: { rawHeaders: string[]; status: number } | undefined;
  readonly #deadline = new HeadDeadline(() => this.#fail(socketError('the upstream did not answer in time', HEAD_TIMEOUT_CODE)));
  /** The final head was read in the read being parsed (see read). */
  #headInRead = false;
  /** The last time the connection went idle (for the pool's idle sweep). */
  idleSince = 0;
  readonly #reads: SocketReads;
  readonly resume = (): void => {
    this.#reads.resume();
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
    this.#reads = new SocketReads(socket, this.#parser);
    this.#body = new StreamedBody(socket, this);
    socket.setNoDelay(true);
    socket.setTimeout(connectMs, onConnectTimeout);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      this.#connected = true;
      socket.setTimeout(0);
      this.#reads.consume();
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
      return this.#deadline.arm(request.headersTimeoutMs);
    }
    this.#bodyWritten = false;
    socket.write(head.text, 'latin1');
    this.#body.start(body, head.framing === 'chunked');
  }

  /** The caller's body has all been written: the deadline for the head starts now. */
  bodySent(): void {
    this.#bodyWritten = true;
    if (this.#answered) this.#release();
    else if (!this.#finalSeen) this.#deadline.arm(this.#request!.headersTimeoutMs);
  }

  /** The caller's body stopped before its end (the caller went away): the request cannot be completed. */
  bodyCut(): void {
    if (!this.#bodyWritten) this.#fail(socketError('the caller went away before its body was sent', 'ECONNRESET'));
  }

  drained(): void {
    this.#body.drained();
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
    this.#body.stop();
    this.#deadline.dispose();
    this.#releaseParser();
    this.#owner.removed(this, this.#connected ? undefined : this.#connectError);
  }

  #connectError: Error | undefined;

  /**
   * The native parser is freed explicitly, as node's own http code does (it is not garbage-collected
   * while it lives), once the stack of any callback of its own has unwound.
   */
  #releaseParser(): void {
    this.#reads.unconsume();
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
      this.#deadline.disarm();
      return 2;
    }
    // RFC 9110 §15.2: interim answers come before the final one, each a message of its own without a body.
    if (status >= 100 && status < 200) {
      this.#interim = true;
      handler.onHeaders(status, headers, this.resume, reason);
      return 1;
    }
    this.#finalSeen = true;
    this.#deadline.disarm();
    this.#headInRead = true;
    if (!keepAlive) this.#reusable = false;
    if (!handler.onHeaders(status, headers, this.resume, reason)) this.#reads.pause();
    return this.#request?.method === 'HEAD' ? 1 : 0;
  }

  body(chunk: Buffer): void {
    const handler = this.#handler;
    if (handler === undefined || this.#interim) return;
    if (!handler.onData(chunk)) this.#reads.pause();
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
    if (this.#body.active) {
      this.#body.stop();
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
    this.#reads.resume();
    this.#owner.released(this);
  }

  /** The request fails (once): its handler hears of it, and the connection is closed. */
  #fail(error: Error): void {
    if (!this.#connected) this.#connectError ??= error;
    const handler = this.#handler;
    this.#handler = undefined;
    this.#body.stop();
    this.#request = undefined;
    this.#answered = false;
    this.#reusable = false;
    this.#deadline.disarm();
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
    this.#reads.unconsume();
    socket.off('data', onSocketData);
    socket.off('end', onSocketEnd);
    socket.off('error', onSocketError);
    socket.off('close', onSocketClose);
    socket.off('drain', onSocketDrain);
    this.#owner.removed(this, undefined);
    this.#deadline.dispose();
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
