/**
 * The upstream connection pools: undici `Pool`s, one per origin, TLS settings and connect time-out.
 * undici replaced node's `http.request` for forwarding: in the benchmark a bare undici forwarder
 * served about 1.2 × the requests of a bare `http.request` one at about 0.7 × its CPU per request
 * (docs/performance.md).
 */
import { Pool } from 'undici';
import { clientTlsOptions, keyPairId, type TlsKeyPair, type TlsVerify } from '../config/tls.js';

/** Sized for a busy gateway: as many sockets per origin as node's agent had (maxSockets 512). */
const CONNECTIONS = 512;

export type UpstreamPool = Pool;

/**
 * Tells pools apart: routes with the same origin, the same TLS settings and the same connect
 * time-out share one. Trust and client certificate are part of it: a route must never reuse a
 * socket that another route's CA verified or another route's certificate authenticated (RFC 8705
 * §3 binds tokens to that certificate).
 */
export function poolId(url: URL, tls: TlsVerify | undefined, credentials: TlsKeyPair | undefined, connectMs: number): string {
  return [url.origin, `connect ${connectMs}`, tls?.id, credentials === undefined ? undefined : keyPairId(credentials)]
    .filter((part) => part !== undefined)
    .join(' ');
}

/**
 * A pool for a route's upstream. Its TLS context is built now (clientTlsOptions), so a CA bundle or
 * key pair OpenSSL refuses throws here, when the config is compiled, not at the first handshake.
 */
export function upstreamPool(url: URL, tls: TlsVerify | undefined, credentials: TlsKeyPair | undefined, connectMs: number): UpstreamPool {
  return new Pool(url.origin, {
    connections: CONNECTIONS,
    // One request at a time per socket: a pipelined request would wait behind a slow one, and an
    // upstream that closes a socket would take the requests queued on it along (RFC 9112 §9.3.2).
    pipelining: 1,
    connect: { timeout: connectMs, ...clientTlsOptions(tls, credentials) },
  });
}

/** Closes a pool's sockets, cutting short what still runs on them; never rejects. */
export async function destroyPool(pool: UpstreamPool): Promise<void> {
  await pool.destroy().catch(() => undefined);
}
