/**
 * What the upstream client and its users say to each other: a request, the handler that hears of
 * its answer, the pool a connection reports to, and the error codes a request can fail with.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** A connection as its pool sees it (connection.ts). */
export interface PooledConnection {
  readonly socket: Socket;
  /** When it last went idle (performance.now()), for the pool's idle sweep. */
  idleSince: number;
  send(request: Http1Request, handler: Http1Handler): void;
}

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
  released(connection: PooledConnection): void;
  /** The connection is gone (closed, failed, upgraded); `error` when it failed before it ever connected. */
  removed(connection: PooledConnection, connectError: Error | undefined): void;
}

/** A socket error with the code it is classified by (upstream-failure.ts). */
export function socketError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The code of a connect that did not complete within timeouts.connectMs (as undici named it: logs and traces keep it). */
export const CONNECT_TIMEOUT_CODE = 'UND_ERR_CONNECT_TIMEOUT';
/** The code of a final head that did not come within timeouts.responseMs (as undici named it). */
export const HEAD_TIMEOUT_CODE = 'UND_ERR_HEADERS_TIMEOUT';
/** An answer no caller may be given: an unasked 101, say. The request fails as on a broken upstream. */
export const UNUSABLE_ANSWER_CODE = 'EPROTO';
