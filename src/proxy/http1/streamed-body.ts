/**
 * A caller's body streamed into the request on one upstream connection: framed as it came (its
 * Content-Length) or chunked on this hop, the caller paused while the socket is full and resumed at
 * the socket's 'drain', and the connection told when the body has all been sent or was cut short.
 * The listeners are shared functions that find the body through the caller (no closure per request).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** The connection the body goes out on. */
export interface BodyOwner {
  /** The whole body has been written. */
  bodySent(): void;
  /** The caller's body stopped before its end (the caller went away). */
  bodyCut(): void;
}

const STREAMED = Symbol('tokengate.streamedBody');
type Caller = IncomingMessage & { [STREAMED]?: StreamedBody };

export class StreamedBody {
  readonly #socket: Socket;
  readonly #owner: BodyOwner;
  #caller: Caller | undefined;
  #chunked = false;

  constructor(socket: Socket, owner: BodyOwner) {
    this.#socket = socket;
    this.#owner = owner;
  }

  /** A body is being streamed (started, neither ended nor stopped). */
  get active(): boolean {
    return this.#caller !== undefined;
  }

  /** Streams `caller`'s body after the head just written; `chunked` when its length is unknown. */
  start(caller: IncomingMessage, chunked: boolean): void {
    this.#caller = caller;
    this.#chunked = chunked;
    (caller as Caller)[STREAMED] = this;
    caller.on('data', onCallerData);
    caller.once('end', onCallerEnd);
    caller.once('close', onCallerClose);
  }

  /** The socket has room again. */
  drained(): void {
    this.#caller?.resume();
  }

  /** No more of the body goes out (the answer came first, or the connection is gone); nobody is told. */
  stop(): void {
    const caller = this.#caller;
    if (caller === undefined) return;
    this.#caller = undefined;
    caller[STREAMED] = undefined;
    caller.off('data', onCallerData);
    caller.off('end', onCallerEnd);
    caller.off('close', onCallerClose);
  }

  write(chunk: Buffer): void {
    const socket = this.#socket;
    let flowing: boolean;
    if (this.#chunked) {
      if (chunk.length === 0) return;
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      flowing = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else flowing = socket.write(chunk);
    if (!flowing) this.#caller?.pause();
  }

  /** The caller's body ended: the chunked coding is closed, and the request is all written. */
  end(): void {
    this.stop();
    if (this.#chunked) this.#socket.write('0\r\n\r\n', 'latin1');
    this.#owner.bodySent();
  }

  cut(): void {
    this.stop();
    this.#owner.bodyCut();
  }
}

function onCallerData(this: Caller, chunk: Buffer): void {
  this[STREAMED]?.write(chunk);
}

function onCallerEnd(this: Caller): void {
  this[STREAMED]?.end();
}

function onCallerClose(this: Caller): void {
  this[STREAMED]?.cut();
}
