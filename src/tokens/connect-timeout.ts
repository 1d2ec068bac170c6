/**
 * The connect phase's own time-out, shared by the upstream and token-endpoint clients: Node's
 * request time-out only counts idle time on a socket, so a peer that never accepts would be
 * waited for as long as the whole request may take.
 */
import type { Socket } from 'node:net';

/** Calls `onTimeout` unless `socket` connects (or closes) within `ms`; a socket already connected is left alone. */
export function armConnectTimeout(socket: Socket, ms: number, onTimeout: () => void): void {
  if (!socket.connecting) return;
  const timer = setTimeout(onTimeout, ms);
  socket.once('connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}
