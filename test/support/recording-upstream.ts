/**
 * An upstream on a raw socket that records each request exactly as it arrived (request line, every
 * header line in order and case, the body's framing, its bytes once de-chunked, its trailers) and
 * answers with scripted bytes: whatever framing, pauses or interim answers a test asks for.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { readHead, readRequestBody, SocketReader, values, type Body, type HeaderLine } from './wire.js';

export interface Received {
  method: string;
  target: string;
  version: string;
  headers: HeaderLine[];
  body: Body;
}

/** An answer's bytes in order; a number is a pause of that many milliseconds (a slow body). */
export interface Reply {
  pieces: Array<Buffer | string | number>;
  /** Close the connection after the last piece (a close-delimited body, or `Connection: close`). */
  close: boolean;
}

export type Script = (request: Received) => Reply;

/** `200 OK` with a short body: what an upstream says when the test only looks at the request. */
export const OK: Script = () => ({ pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'], close: false });

export interface RecordingUpstream {
  port: number;
  url: string;
  received: Received[];
  /** What could not be read as HTTP/1.1 (the connection was then dropped): a proxy's malformed request. */
  errors: string[];
  /** The answer for each request from now on. */
  script: Script;
  close(): Promise<void>;
}

const pause = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

export async function startRecordingUpstream(script: Script = OK): Promise<RecordingUpstream> {
  const sockets = new Set<Socket>();
  const upstream: RecordingUpstream = { port: 0, url: '', received: [], errors: [], script, close: () => Promise.resolve() };
  const serve = async (socket: Socket) => {
    const reader = new SocketReader(socket);
    for (;;) {
      const head = await readHead(reader);
      if (head === undefined) return socket.end();
      const [method = '', target = '', version = ''] = head.startLine.split(' ');
      // RFC 9110 §10.1.1: a server that will read the body says so with a 100 first.
      if (values(head.headers, 'expect').some((v) => v.toLowerCase() === '100-continue')) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
      const body = await readRequestBody(reader, head.headers);
      const request: Received = { method, target, version, headers: head.headers, body };
      upstream.received.push(request);
      const reply = upstream.script(request);
      for (const piece of reply.pieces) {
        if (typeof piece === 'number') await pause(piece);
        else if (!socket.destroyed) socket.write(piece);
      }
      if (reply.close) return socket.end();
    }
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    serve(socket).catch((error: unknown) => {
      upstream.errors.push(String(error));
      socket.destroy();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  upstream.port = (server.address() as AddressInfo).port;
  upstream.url = `http://127.0.0.1:${upstream.port}`;
  upstream.close = () =>
    new Promise<void>((done) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => done());
    });
  return upstream;
}
