/**
 * How a connection's socket is read. Node's HTTP server has its parser read each caller's socket
 * stream itself (consume): a read then costs no JavaScript callback, Buffer or 'data' event before
 * the parser sees it, about a tenth of the upstream client's work per request (decision 0008). This
 * does the same for an upstream socket, with the fields node's own server sets and reads for it
 * (`_handle`, `isStreamBase`, `_consumed`, `reading`, `readStart`, `readStop`). End-of-stream and
 * errors still come as the socket's 'end' and 'error'; a socket without such a stream is read
 * through 'data' events and paused and resumed as a stream.
 */
import type { Socket } from 'node:net';
import type { Http1Parser } from './llhttp.js';

/** A socket's native stream, as node's net keeps it. */
interface StreamHandle {
  readonly isStreamBase?: boolean;
  _consumed?: boolean;
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

export class SocketReads {
  readonly #socket: Socket;
  readonly #parser: Http1Parser;
  /** Set while the parser reads the stream itself. */
  #handle: StreamHandle | undefined;

  constructor(socket: Socket, parser: Http1Parser) {
    this.#socket = socket;
    this.#parser = parser;
  }

  /** Once connected: the parser reads the stream itself if the socket has one no one else reads. */
  consume(): void {
    const handle = (this.#socket as unknown as { _handle?: StreamHandle })._handle;
    if (handle?.isStreamBase !== true || handle._consumed === true) return;
    handle._consumed = true;
    this.#handle = handle;
    this.#parser.consume(handle);
  }

  /** The socket goes back to 'data' events (an upgrade's tunnel reads it), or is gone. */
  unconsume(): void {
    if (this.#handle === undefined) return;
    this.#handle = undefined;
    this.#parser.unconsume();
  }

  pause(): void {
    const handle = this.#handle;
    if (handle === undefined) return void this.#socket.pause();
    if (!handle.reading) return;
    handle.reading = false;
    handle.readStop();
  }

  resume(): void {
    const handle = this.#handle;
    if (handle === undefined) return void this.#socket.resume();
    if (handle.reading || this.#socket.destroyed) return;
    handle.reading = true;
    handle.readStart();
  }
}
