/**
 * The proxy listener as Node's HTTP server: its limits from listen.*, TLS when configured, malformed
 * requests answered as problems, WebSocket handshakes to the handler and other upgrades served as
 * ordinary requests. And the two helpers both listeners start and name themselves with.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/types.js';
import type { ProxyHandler } from '../proxy/handler.js';
import { answerClientError } from '../proxy/client-error.js';
import { isWebSocketUpgrade, serveAsOrdinary } from '../proxy/upgrade.js';
import type { BuiltConfig } from '../runtime/build.js';

/**
 * How often Node checks headersTimeout and requestTimeout (its default is 30 s, which would let a
 * slow client hold a socket far past a short headersTimeoutMs).
 */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1_000;

export type ProxyServer = http.Server | https.Server;

export function createProxyServer(listen: Config['listen'], tls: BuiltConfig['listenerTls'], handler: ProxyHandler): ProxyServer {
  const serverOptions: http.ServerOptions = {
    maxHeaderSize: listen.maxHeaderBytes,
    headersTimeout: listen.headersTimeoutMs,
    requestTimeout: listen.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(MAX_TIMEOUT_CHECK_INTERVAL_MS, listen.headersTimeoutMs),
  };
  const server =
    listen.tls === undefined
      ? http.createServer(serverOptions, handler.handle)
      : https.createServer({ ...serverOptions, ...tls }, handler.handle);
  server.on('clientError', answerClientError);
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (isWebSocketUpgrade(req)) handler.upgrade(req, socket, head);
    else serveAsOrdinary(server, req, socket, head);
  });
  return server;
}

export function listen(server: ProxyServer, host: string, port: number): Promise<void> {
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      done();
    });
  });
}

export function urlOf(server: ProxyServer): string {
  const address = server.address() as AddressInfo | null;
  if (address === null) return '';
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${server instanceof https.Server ? 'https' : 'http'}://${host}:${address.port}`;
}
