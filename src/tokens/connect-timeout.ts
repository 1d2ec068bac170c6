/**
 * The connect phase's own time-out for the token-endpoint transport (endpoint.ts; the upstream
 * client has undici's): the only limit below the provider's deadline, because a peer that never
 * accepts is told apart from one that accepts and then says nothing ("connect timed out").
 */
import type { Socket } from 'node:net';

/** Calls `onTimeout` unless `socket` connects (or closes) within `ms`; a socket already connected is left alone. */
export function armConnectTimeout(socket: Socket, ms: number, onTimeout: () => void): void {
  if (!socket.connecting) return;
  const timer = setTimeout(onTimeout, ms);
  socket.once('connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}
