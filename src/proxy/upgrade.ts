/**
 * HTTP/1.1 upgrades on the proxy listener (RFC 9110 §7.8). A WebSocket handshake (RFC 6455 §4)
 * goes through the request pipeline like any request and, once the upstream has switched
 * protocols, becomes a tunnel: the caller's socket and the upstream's, piped both ways until
 * either side closes. Any other upgrade (`h2c`, say) is not taken: the request is served as an
 * ordinary one, its Upgrade header dropped as the hop-by-hop header it is.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { callerResponseHeaders } from './headers.js';

/**
 * RFC 6455 §4.1: a handshake is a GET whose Upgrade lists `websocket`. It carries no body; a
 * request that does is no handshake, and is served as an ordinary request.
 */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  if (req.method !== 'GET' || upgrade === undefined) return false;
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) return false;
  return upgrade.split(',').some((token) => token.trim().toLowerCase() === 'websocket');
}

/**
 * A response object on an upgrade's socket, so that a refusal or the upstream's own non-101 answer
 * is written, counted and logged like any other. Node hands an upgrade over without one, and with
 * the socket out of its keep-alive handling: the connection ends after the answer.
 */
export function responseOnSocket(req: IncomingMessage, socket: Duplex): http.ServerResponse {
  const res = new http.ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => socket.end(() => socket.destroy()));
  return res;
}

/**
 * The 101 head for the caller: the upstream's headers through the same hygiene as any answer,
 * then Connection and the upstream's Upgrade, which that hygiene removes and a 101 must carry
 * (RFC 9110 §7.8, RFC 6455 §4.2.2). Values come from the upstream's parsed head: no CR or LF.
 */
export function switchingProtocolsHead(raw: readonly string[], requestId: string): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  const list = callerResponseHeaders(raw, requestId);
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'upgrade') head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  head += 'Connection: Upgrade\r\n';
  for (let i = 0; i < list.length; i += 2) head += `${list[i]}: ${list[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/**
 * Serves an upgrade the gateway does not take as the ordinary request it also is: its head is put
 * back on the socket without the Upgrade line (so Node's parser no longer reads it as an
 * upgrade), ahead of the bytes already read past it, and the socket handed to the listener again.
 */
export function serveAsOrdinary(server: http.Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== 'upgrade') text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  if (head.length > 0) socket.unshift(head);
  socket.unshift(Buffer.from(`${text}\r\n`, 'latin1'));
  // An HTTPS listener's requests come from its TLS sockets ('secureConnection'), not the TCP ones.
  server.emit(server instanceof https.Server ? 'secureConnection' : 'connection', socket);
}

/**
 * The callers' upgrade sockets, from the upgrade request until they close, so that a drain can end
 * them (the HTTP server no longer counts them as its connections), and the tunnels between them
 * and the upstreams.
 */
export class Upgrades {
  readonly #sockets = new Set<Duplex>();
  /** Open tunnels by route name. */
  readonly #open = new Map<string, number>();

  /** Watches a caller's socket from its upgrade request on: an error ends it, never the process. */
  track(socket: Duplex): void {
    this.#sockets.add(socket);
    socket.on('error', destroyOnError);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  /**
   * Pipes `caller` and `upstream` both ways. The end of one direction ends the other side's writing
   * (a WebSocket close handshake finishes in band: RFC 6455 §7.1.1); a socket that closes or fails
   * takes the other with it. The tunnel counts as open on `route` while it lasts.
   */
  tunnel(caller: Duplex, upstream: Duplex, route: string): void {
    this.#open.set(route, (this.#open.get(route) ?? 0) + 1);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      const left = this.#open.get(route)! - 1;
      if (left === 0) this.#open.delete(route);
      else this.#open.set(route, left);
      caller.destroy();
      upstream.destroy();
    };
    upstream.on('error', destroyOnError);
    caller.once('close', close);
    upstream.once('close', close);
    upstream.pipe(caller);
    caller.pipe(upstream);
    // Either side may have gone while the 101 was on its way: 'close' has then been emitted already.
    if (caller.destroyed || upstream.destroyed) close();
  }

  /** Open tunnels by route name (routes without one are absent). */
  get open(): ReadonlyMap<string, number> {
    return this.#open;
  }

  /** Ends every upgrade still open (the drain's deadline has passed). */
  closeAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}
