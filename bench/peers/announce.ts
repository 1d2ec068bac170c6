/** Peers run as forked children: each tells the parent its port once it listens. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { keepTickShape } from '../../src/proxy/tick-shape.js';

export interface Announcement {
  readonly port: number;
}

export function announce(server: Server): void {
  // As the gateway does: no peer's figures may depend on how long it sat idle before its turn.
  keepTickShape();
  const { port } = server.address() as AddressInfo;
  process.send?.({ port } satisfies Announcement);
  // The parent going away (crash, Ctrl-C) must not leave a peer listening.
  process.on('disconnect', () => process.exit(0));
  // An orderly exit, so that --cpu-prof writes its profile.
  process.once('SIGTERM', () => process.exit(0));
}

/** The upstream port passed as the first argument. */
export function upstreamPort(): number {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`usage: ${process.argv[1]} UPSTREAM_PORT`);
  return port;
}

/** The Authorization header the baselines inject: static, as if a token were always cached. */
export const STATIC_AUTHORIZATION = 'Bearer bench-static-token-0123456789abcdef0123456789abcdef';
