/**
 * The undici dispatcher a connection's token and discovery requests go through: the same client
 * stack as the upstreams (proxy/upstream-pool.ts), with the connection's TLS trust and client
 * certificate (RFC 8705) on every socket it opens, and an exact connect time-out.
 */
import type { Socket } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { clientTlsOptions, type TlsKeyPair, type TlsVerify } from '../config/tls.js';
import { TimeoutSignal } from './endpoint.js';

/** undici's connector returns the socket it opens (lib/core/connect.js); its typings say void. */
type OpeningConnector = (options: buildConnector.Options, callback: buildConnector.Callback) => Socket;

/** Token requests are rare (one per token lifetime): a few sockets per origin are plenty. */
const CONNECTIONS = 16;

/**
 * Calls `onTimeout` unless `socket` connects (or closes) within `ms`: the connect phase's own limit,
 * so a peer that never accepts is told apart from one that accepts and then says nothing. It can
 * only end a request before the provider's deadline does (deadline.ts).
 */
function armConnectTimeout(socket: Socket, ms: number, onTimeout: () => void): void {
  if (!socket.connecting) return;
  const timer = setTimeout(onTimeout, ms);
  socket.once('connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}

/**
 * undici checks its own connect time-out about twice a second (decision 0005); a token request's
 * connect phase is short enough that the gap would show, so the socket gets a timer of its own.
 */
export function authServerDispatcher(tls: TlsVerify | undefined, credentials: TlsKeyPair | undefined, connectMs: number): Agent {
  // Built now: a CA bundle or key pair OpenSSL refuses throws when the config is compiled.
  // timeout 0: undici's own coarse connect timer is off, the one below replaces it.
  const connector = buildConnector({ ...clientTlsOptions(tls, credentials), timeout: 0 }) as unknown as OpeningConnector;
  const connect: buildConnector.connector = (options, callback) => {
    const socket = connector(options, callback);
    armConnectTimeout(socket, connectMs, () => socket.destroy(new TimeoutSignal('connect timed out')));
    return socket;
  };
  return new Agent({ connections: CONNECTIONS, pipelining: 1, connect });
}
