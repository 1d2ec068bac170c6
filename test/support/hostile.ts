/**
 * A raw TCP peer that misbehaves on purpose: it reads a request head, picks a behaviour by the
 * first path segment (`/NAME/...`) and lets it write whatever bytes it likes, or nothing. Real
 * servers will not send a 101 to a POST or drip a status line; these are the faults the gateway
 * must survive. Counts requests per behaviour, so tests can check the retry policy.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export type Behaviour = (socket: Socket, head: string) => void;

export interface RawPeer {
  url: string;
  port: number;
  /** Requests received per behaviour name. */
  count(name: string): number;
  close(): Promise<void>;
}

export interface HeadServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * A raw TCP server that calls `onHead` once per connection, when the request head (up to its blank
 * line) has arrived, with the text read so far; whatever arrives after that is read and dropped.
 */
export async function startHeadServer(onHead: (socket: Socket, head: string) => void): Promise<HeadServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.resume();
      onHead(socket, head);
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

export async function startRawPeer(behaviours: Readonly<Record<string, Behaviour>>): Promise<RawPeer> {
  const counts = new Map<string, number>();
  const server = await startHeadServer((socket, head) => {
    const target = head.slice(head.indexOf(' ') + 1, head.indexOf(' ', head.indexOf(' ') + 1));
    const name = target.split('/')[1] ?? '';
    counts.set(name, (counts.get(name) ?? 0) + 1);
    const behaviour = behaviours[name];
    if (behaviour === undefined) socket.destroy();
    else behaviour(socket, head);
  });
  return { ...server, count: (name) => counts.get(name) ?? 0 };
}

/** A JSON answer with Content-Length. */
export function jsonAnswer(status: number, body: unknown, extra = ''): string {
  const text = JSON.stringify(body);
  return `HTTP/1.1 ${status} X\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${extra}\r\n${text}`;
}

/** Writes `text` one byte every `everyMs`, for as long as the socket lives (a peer that drips). */
export function drip(socket: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) return clearInterval(timer);
    socket.write(text[i % text.length]!);
    i++;
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

/**
 * `callers` raw HTTP callers, `parallel` at a time, each sending `request` and giving up (closing
 * its socket) after `giveUpMs` without reading. Resolves when all have given up.
 */
export async function callersWhoGiveUp(url: string, request: string, callers: number, parallel: number, giveUpMs: number): Promise<void> {
  const { hostname, port } = new URL(url);
  let started = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = connect(Number(port), hostname);
      socket.on('error', () => undefined);
      socket.once('connect', () => socket.write(request));
      socket.resume();
      const timer = setTimeout(() => socket.destroy(), giveUpMs);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  const lane = async () => {
    while (started < callers) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
}
