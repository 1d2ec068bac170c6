/**
 * The upstream connection pools, one per origin, TLS settings and connect time-out: tokengate's own
 * HTTP/1.1 client on node's llhttp parser (http1/, decision 0008). undici's pools did this before
 * (decision 0005), node's `http.request` before that; docs/performance.md says what each cost.
 */
import { clientTlsOptions, keyPairId, type TlsKeyPair, type TlsVerify } from '../config/tls.js';
import { Http1Pool } from './http1/pool.js';

/** Sized for a busy gateway: as many sockets per origin as node's agent had (maxSockets 512). */
const CONNECTIONS = 512;

export type UpstreamPool = Http1Pool;

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
  return new Http1Pool(url, { connections: CONNECTIONS, connectMs, tls: clientTlsOptions(tls, credentials) });
}

/** Closes a pool's sockets, cutting short what still runs on them; never rejects. */
export async function destroyPool(pool: UpstreamPool): Promise<void> {
  await pool.destroy().catch(() => undefined);
}
