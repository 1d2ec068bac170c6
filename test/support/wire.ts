/**
 * HTTP/1.1 messages read straight off a socket (RFC 9112), for the peers of the differential suite
 * (test/everyday-nginx.test.ts): every header line as it arrived (order, case, repeats, obs-text
 * bytes), the framing a body came in, its bytes once de-chunked, and its trailers.
 */
import { connect, type Socket } from 'node:net';

/** A header line as it arrived: name with its case, value with outer whitespace trimmed (RFC 9112 §5.1). */
export type HeaderLine = [name: string, value: string];

/** How a body was delimited on the wire (RFC 9112 §6). */
export type Framing = 'none' | 'length' | 'chunked' | 'close';

/** Buffers what a socket delivers and hands it out by lines and byte counts. */
export class SocketReader {
  #chunks: Buffer[] = [];
  #length = 0;
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
      this.#notify();
    });
    const end = () => {
      this.#ended = true;
      this.#notify();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  /** True once the peer has closed and every byte has been read. */
  get drained(): boolean {
    return this.#ended && this.#length === 0;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #more(): Promise<void> {
    return new Promise((done) => (this.#wake = done));
  }

  #take(n: number): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length === 0 ? [] : [rest];
    this.#length = rest.length;
    return out;
  }

  /** The next line without its CRLF (latin1), or undefined when the peer closed first. */
  async line(): Promise<string | undefined> {
    for (;;) {
      if (this.#length > 0) {
        const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
        this.#chunks = [all];
        const end = all.indexOf('\r\n');
        if (end >= 0) {
          const line = this.#take(end + 2);
          return line.subarray(0, end).toString('latin1');
        }
      }
      if (this.#ended) return undefined;
      await this.#more();
    }
  }

  /** Exactly `n` bytes; fewer when the peer closed first. */
  async exact(n: number): Promise<Buffer> {
    while (this.#length < n && !this.#ended) await this.#more();
    return this.#take(Math.min(n, this.#length));
  }

  /** Every byte until the peer closes. */
  async rest(): Promise<Buffer> {
    while (!this.#ended) await this.#more();
    return this.#take(this.#length);
  }
}

export interface Head {
  startLine: string;
  headers: HeaderLine[];
}

/** A message head, or undefined when the peer closed before its first line. */
export async function readHead(reader: SocketReader): Promise<Head | undefined> {
  const startLine = await reader.line();
  if (startLine === undefined) return undefined;
  const headers: HeaderLine[] = [];
  for (;;) {
    const line = await reader.line();
    if (line === undefined) throw new Error(`the peer closed inside the head after ${JSON.stringify(startLine)}`);
    if (line === '') return { startLine, headers };
    const colon = line.indexOf(':');
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
}

/** Every value of header `name` (any case), in order. */
export function values(headers: readonly HeaderLine[], name: string): string[] {
  const wanted = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === wanted).map(([, v]) => v);
}

export interface Body {
  framing: Framing;
  bytes: Buffer;
  trailers: HeaderLine[];
}

/** A chunked body (RFC 9112 §7.1): its bytes and its trailer section. */
export async function readChunked(reader: SocketReader): Promise<Body> {
  const parts: Buffer[] = [];
  for (;;) {
    const sizeLine = await reader.line();
    if (sizeLine === undefined) throw new Error('the peer closed inside a chunked body');
    const size = Number.parseInt(sizeLine.split(';')[0]!.trim(), 16);
    if (Number.isNaN(size)) throw new Error(`a bad chunk size line ${JSON.stringify(sizeLine)}`);
    if (size === 0) break;
    parts.push(await reader.exact(size));
    if ((await reader.line()) !== '') throw new Error('a chunk not followed by CRLF');
  }
  const trailers: HeaderLine[] = [];
  for (;;) {
    const line = await reader.line();
    if (line === undefined) throw new Error('the peer closed inside a trailer section');
    if (line === '') break;
    const colon = line.indexOf(':');
    trailers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { framing: 'chunked', bytes: Buffer.concat(parts), trailers };
}

/** A request body as RFC 9112 §6.3 delimits it: chunked, a length, or none. */
export async function readRequestBody(reader: SocketReader, headers: readonly HeaderLine[]): Promise<Body> {
  if (values(headers, 'transfer-encoding').length > 0) return readChunked(reader);
  const length = values(headers, 'content-length')[0];
  if (length === undefined) return { framing: 'none', bytes: Buffer.alloc(0), trailers: [] };
  return { framing: 'length', bytes: await reader.exact(Number(length)), trailers: [] };
}

/** A response as a caller receives it. */
export interface Answer {
  /** 1xx answers before the final one, each as status and headers. */
  interim: Array<{ status: number; headers: HeaderLine[] }>;
  status: number;
  reason: string;
  headers: HeaderLine[];
  body: Body;
  /** The connection cannot carry another request (the server said close, or the body ran to the close). */
  closed: boolean;
}

/** The next response on `reader` to a request with `method` (RFC 9112 §6.3); its head may already have been read. */
export async function readAnswer(reader: SocketReader, method: string, alreadyRead?: Head): Promise<Answer> {
  const interim: Answer['interim'] = [];
  let first = alreadyRead;
  for (;;) {
    const head = first ?? (await readHead(reader));
    first = undefined;
    if (head === undefined) throw new Error('the server closed the connection without an answer');
    const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(head.startLine);
    if (match === null) throw new Error(`a bad status line ${JSON.stringify(head.startLine)}`);
    const status = Number(match[1]);
    if (status < 200 && status !== 101) {
      interim.push({ status, headers: head.headers });
      continue;
    }
    const connection = values(head.headers, 'connection').join(',').toLowerCase();
    let closed = /\bclose\b/.test(connection) || head.startLine.startsWith('HTTP/1.0');
    let body: Body;
    if (method === 'HEAD' || status === 204 || status === 304 || status === 101) {
      body = { framing: 'none', bytes: Buffer.alloc(0), trailers: [] };
    } else if (values(head.headers, 'transfer-encoding').length > 0) {
      body = await readChunked(reader);
    } else if (values(head.headers, 'content-length').length > 0) {
      body = { framing: 'length', bytes: await reader.exact(Number(values(head.headers, 'content-length')[0])), trailers: [] };
    } else {
      body = { framing: 'close', bytes: await reader.rest(), trailers: [] };
      closed = true;
    }
    return { interim, status, reason: match[2]!, headers: head.headers, body, closed };
  }
}

/**
 * A caller on one keep-alive connection, reconnecting when the server closed it. Requests go out as
 * the exact bytes given; one whose head says `Expect: 100-continue` sends its body only after the
 * server's 100 (or not at all when a final answer comes first).
 */
export class WireClient {
  readonly #port: number;
  #socket: Socket | undefined;
  #reader: SocketReader | undefined;

  constructor(port: number) {
    this.#port = port;
  }

  async #connection(): Promise<{ socket: Socket; reader: SocketReader }> {
    if (this.#socket === undefined || this.#reader === undefined || this.#socket.destroyed || this.#reader.drained) {
      this.#socket?.destroy();
      const socket = connect(this.#port, '127.0.0.1');
      socket.setNoDelay(true);
      this.#reader = new SocketReader(socket);
      this.#socket = socket;
      await new Promise<void>((done, fail) => {
        socket.once('connect', done);
        socket.once('error', fail);
      });
    }
    return { socket: this.#socket, reader: this.#reader };
  }

  /** Sends `head` (ending in CRLF CRLF) and `body`, and reads the answer to `method`. */
  async send(method: string, head: Buffer, body: Buffer, expectContinue: boolean): Promise<Answer> {
    const { socket, reader } = await this.#connection();
    socket.write(head);
    let answer: Answer;
    if (expectContinue) {
      // RFC 9110 §10.1.1: the body waits for the 100; a final answer instead means it is not wanted.
      const first = await readHead(reader);
      if (first === undefined) throw new Error('the server closed the connection without an answer');
      if (/^HTTP\/1\.[01] 100\b/.test(first.startLine)) {
        socket.write(body);
        answer = await readAnswer(reader, method);
        answer.interim.unshift({ status: 100, headers: first.headers });
      } else {
        answer = await readAnswer(reader, method, first);
      }
    } else {
      if (body.length > 0) socket.write(body);
      answer = await readAnswer(reader, method);
    }
    if (answer.closed) this.close();
    return answer;
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#reader = undefined;
  }
}
