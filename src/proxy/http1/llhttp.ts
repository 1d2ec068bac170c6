/**
 * Node's own HTTP/1.1 parser, llhttp in C++, as node's http client and server drive it. It is not
 * a documented API: `_http_common` (loadable on every Node line tokengate runs on, without a
 * deprecation warning) exports the constructor and the callback slots. It is the one hack of the
 * upstream client, kept to this file ([decision 0008](../../../docs/decisions/0008-own-http1-client.md)):
 * undici parses in WebAssembly and spent about 15 µs more per forwarded request than this parser
 * does (docs/performance.md). If a Node line stops exporting it, the gateway fails at start-up with
 * the message below, and `test/core-upstream-client` fails on that line in CI.
 */
import { createRequire } from 'node:module';

/** The parser's callbacks: node calls each with the parser as `this`. */
export interface ParserCallbacks<P> {
  /** Header lines flushed before the head ended (more than 32 of them) or, after a body, trailer lines. */
  onHeaders: (this: P, headers: string[], url: string) => void;
  /**
   * The head is complete; `headers` is undefined when its lines were flushed through onHeaders.
   * Returns 0 to read a body, 1 to read none (HEAD, an interim answer), 2 for an upgrade.
   */
  onHeadersComplete: (
    this: P,
    versionMajor: number,
    versionMinor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    status: number,
    reason: string | undefined,
    upgrade: boolean,
    shouldKeepAlive: boolean,
  ) => number;
  /** A piece of the body, a copy of its own. */
  onBody: (this: P, chunk: Buffer) => void;
  onMessageComplete: (this: P) => void;
  /** A consumed read has been parsed: the bytes consumed, or the parse error. */
  onExecute: (this: P, result: number | Error) => void;
}

export interface Http1Parser {
  /** Parses `chunk`: the bytes consumed, or the parse error (its `code` is llhttp's, `HPE_...`). */
  execute(chunk: Buffer): number | Error;
  /** The peer closed: ends a body that runs to the close, or returns the error of an answer cut short. */
  finish(): undefined | Error;
  /** Releases the native parser; never called from inside one of its callbacks. */
  close(): void;
  /**
   * Reads `handle` (a socket's native stream) straight into the parser, as node's HTTP server
   * does: no JavaScript read callback, Buffer or 'data' event per read. Each read's result is
   * then reported through `onExecute`; end-of-stream and errors still reach the socket.
   */
  consume(handle: object): void;
  unconsume(): void;
  /** The read being parsed (during onExecute): where an upgrade's first tunnel bytes are. */
  getCurrentBuffer(): Buffer;
}

interface ParserConstructor {
  new (): Http1Parser;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}

interface HttpCommon {
  readonly HTTPParser: ParserConstructor;
  readonly _checkIsHttpToken: (value: string) => boolean;
  readonly _checkInvalidHeaderChar: (value: string) => boolean;
}

function loadHttpCommon(): HttpCommon {
  const common = createRequire(import.meta.url)('_http_common') as Partial<HttpCommon>;
  if (
    typeof common.HTTPParser !== 'function' ||
    typeof common._checkIsHttpToken !== 'function' ||
    typeof common._checkInvalidHeaderChar !== 'function'
  )
    throw new Error(`this Node.js (${process.version}) does not export the HTTP parser tokengate forwards with (decision 0008)`);
  return common as HttpCommon;
}

const common = loadHttpCommon();
const { HTTPParser } = common;

/** RFC 9110 §5.1: a field name is a token. Node's own check. */
export const isHttpToken: (value: string) => boolean = common._checkIsHttpToken;
/** RFC 9110 §5.5: a field value has no control character but HTAB (no CR, LF or NUL to split a head with). Node's own check. */
export const hasInvalidHeaderChar: (value: string) => boolean = common._checkInvalidHeaderChar;

/**
 * A response parser with `callbacks`, `owner` reachable from them as `this.owner`. Strict (no
 * lenient flags) and with node's header size limit (`--max-http-header-size`, 16 KiB by default).
 */
export function responseParser<O>(owner: O, callbacks: ParserCallbacks<Http1Parser & { owner: O }>): Http1Parser & { owner: O } {
  const parser = new HTTPParser() as Http1Parser & { owner: O } & Record<number, unknown>;
  parser.owner = owner;
  parser[HTTPParser.kOnHeaders] = callbacks.onHeaders;
  parser[HTTPParser.kOnHeadersComplete] = callbacks.onHeadersComplete;
  parser[HTTPParser.kOnBody] = callbacks.onBody;
  parser[HTTPParser.kOnMessageComplete] = callbacks.onMessageComplete;
  parser[HTTPParser.kOnExecute] = callbacks.onExecute;
  (parser as unknown as { initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void }).initialize(
    HTTPParser.RESPONSE,
    {},
    0,
    HTTPParser.kLenientNone,
  );
  return parser;
}
