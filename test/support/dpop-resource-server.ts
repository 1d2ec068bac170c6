/**
 * A resource server that accepts only DPoP-bound tokens (RFC 9449 §7), checking every proof the
 * way §4.3 lists: one DPoP header, a JWS with typ dpop+jwt signed by the key in its own header,
 * htm and htu of this request, ath of the presented token, a jti never seen before, a fresh iat,
 * the server's nonce when it demands one, and the key's thumbprint equal to the token's cnf.jkt
 * (read from the authorization server's introspection, RFC 7662 + RFC 9449 §6.2).
 */
import { createHash } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { WebSocketServer } from 'ws';
import { DPOP_PROOF_ALGORITHMS } from './oidc.js';
import { startServer, type TestServer } from './servers.js';

/** RFC 9449 §11.1 leaves the window to the server; a minute either way. */
const IAT_WINDOW_S = 60;

export interface DpopCheck {
  readonly ok: boolean;
  /** Why the proof or token was refused (the `error_description`). */
  readonly reason: string | undefined;
  readonly method: string;
  readonly url: string;
  /** The proof as received, and the token: for "never in the logs" checks. */
  readonly proof: string | undefined;
  readonly token: string | undefined;
  /** The proof's alg and nonce, when it could be read. */
  readonly alg: string | undefined;
  readonly nonce: unknown;
}

export interface DpopResourceServer {
  readonly url: string;
  readonly server: TestServer;
  /** Every request and its verdict, in order. */
  readonly checks: DpopCheck[];
  /** Demand a nonce (RFC 9449 §9) from now on; the current one is `nonce`. */
  requireNonce: boolean;
  /** Send the current nonce on every answer, demanded or not (RFC 9449 §9: a server may at any time). */
  announceNonce: boolean;
  readonly nonce: string;
  /** Hand out a new nonce; proofs with the old one are refused with use_dpop_nonce. */
  rotateNonce(): string;
  /** Refuse this token with error="invalid_token" (as if revoked). */
  revoke(token: string): void;
  close(): Promise<void>;
}

export interface DpopResourceServerOptions {
  /** RFC 7662 introspection at the authorization server: must return `cnf.jkt` for a bound token. */
  introspect(token: string): Promise<Record<string, unknown>>;
  requireNonce?: boolean;
  /** Accept WebSocket handshakes that pass the same checks (the accepted connection echoes). */
  websocket?: boolean;
}

export async function startDpopResourceServer(options: DpopResourceServerOptions): Promise<DpopResourceServer> {
  const seenJti = new Set<string>();
  const revoked = new Set<string>();
  const checks: DpopCheck[] = [];
  let counter = 0;
  let nonce = `n-${++counter}-${Date.now()}`;
  let origin = '';
  const state = { requireNonce: options.requireNonce ?? false, announceNonce: false };

  interface Verdict {
    reason?: string;
    error?: string;
    token?: string;
    proof?: string;
    alg?: string;
    nonce?: unknown;
  }
  const verify = async (req: IncomingMessage): Promise<Verdict> => {
    const verdict = await check(req);
    if (verdict.proof !== undefined) {
      try {
        const [header, payload] = verdict.proof
          .split('.')
          .slice(0, 2)
          .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>);
        return { ...verdict, alg: String(header!.alg), nonce: payload!.nonce };
      } catch {
        return verdict;
      }
    }
    return verdict;
  };
  const check = async (req: IncomingMessage): Promise<Verdict> => {
    const authorization = req.headers.authorization ?? '';
    const match = /^DPoP ([\x21-\x7e]+)$/.exec(authorization);
    if (match === null) return { error: 'invalid_token', reason: 'Authorization is not "DPoP <token>"' };
    const token = match[1]!;
    const proofHeaders = req.rawHeaders.filter((_v, i) => i % 2 === 0).filter((name) => name.toLowerCase() === 'dpop');
    if (proofHeaders.length !== 1) return { token, error: 'invalid_dpop_proof', reason: `${proofHeaders.length} DPoP headers` };
    const proof = String(req.headers.dpop);
    let payload: Record<string, unknown>;
    let jwk: JWK;
    try {
      const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_PROOF_ALGORITHMS });
      payload = verified.payload;
      jwk = verified.protectedHeader.jwk!;
    } catch (error) {
      return { token, proof, error: 'invalid_dpop_proof', reason: `signature: ${(error as Error).message}` };
    }
    if ('d' in jwk) return { token, proof, error: 'invalid_dpop_proof', reason: 'private key in the header' };
    const fail = (reason: string) => ({ token, proof, error: 'invalid_dpop_proof', reason });
    if (payload.htm !== req.method) return fail(`htm ${String(payload.htm)} is not ${req.method}`);
    const expectedHtu = `${origin}${(req.url ?? '/').split('?')[0]}`;
    if (payload.htu !== expectedHtu) return fail(`htu ${String(payload.htu)} is not ${expectedHtu}`);
    if (payload.ath !== createHash('sha256').update(token).digest('base64url')) return fail('ath does not match the token');
    if (typeof payload.jti !== 'string' || payload.jti.length < 16) return fail('jti missing or short');
    if (seenJti.has(payload.jti)) return fail('jti replayed');
    seenJti.add(payload.jti);
    if (typeof payload.iat !== 'number' || Math.abs(payload.iat - Date.now() / 1000) > IAT_WINDOW_S) return fail('iat not fresh');
    if (state.requireNonce && payload.nonce !== nonce) return { token, proof, error: 'use_dpop_nonce', reason: 'nonce required' };
    if (revoked.has(token)) return { token, proof, error: 'invalid_token', reason: 'revoked' };
    const introspection = await options.introspect(token);
    const jkt = (introspection.cnf as { jkt?: unknown } | undefined)?.jkt;
    if (introspection.active !== true) return { token, proof, error: 'invalid_token', reason: 'inactive token' };
    if (jkt !== (await calculateJwkThumbprint(jwk, 'sha256'))) {
      return { token, proof, error: 'invalid_token', reason: `key thumbprint is not the token's cnf.jkt (${String(jkt)})` };
    }
    return { token, proof };
  };

  /** The answer to a request: every verdict is recorded in `checks`. */
  const judge = async (req: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body: string }> => {
    let verdict: Verdict;
    try {
      verdict = await verify(req);
    } catch (error) {
      // Introspection failed: the server's own fault, said as such (a test then fails on the 500).
      return { status: 500, headers: { 'content-type': 'text/plain' }, body: String(error) };
    }
    checks.push({
      ok: verdict.error === undefined,
      reason: verdict.reason,
      method: req.method ?? '',
      url: req.url ?? '',
      proof: verdict.proof,
      token: verdict.token,
      alg: verdict.alg,
      nonce: verdict.nonce,
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (state.requireNonce || state.announceNonce) headers['dpop-nonce'] = nonce;
    if (verdict.error !== undefined) {
      headers['www-authenticate'] = `DPoP error="${verdict.error}", algs="${DPOP_PROOF_ALGORITHMS.join(' ')}"`;
      return { status: 401, headers, body: JSON.stringify({ error: verdict.error, reason: verdict.reason }) };
    }
    return { status: 200, headers, body: JSON.stringify({ ok: true, method: req.method, url: req.url }) };
  };

  const server = await startServer((req: IncomingMessage, res: ServerResponse) => {
    void judge(req).then(({ status, headers, body }) => {
      res.writeHead(status, headers);
      res.end(body);
    });
  });
  // WebSocket handshakes (RFC 6455 §4) are checked like any request; an accepted one echoes messages.
  const sockets = options.websocket === true ? new WebSocketServer({ noServer: true }) : undefined;
  if (sockets !== undefined) {
    server.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      void judge(req).then(({ status, headers, body }) => {
        if (status !== 200) {
          const lines = Object.entries({ ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' });
          socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n${body}`);
          return;
        }
        sockets.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
      });
    });
  }
  origin = server.url;
  return {
    url: server.url,
    server,
    checks,
    get requireNonce() {
      return state.requireNonce;
    },
    set requireNonce(value: boolean) {
      state.requireNonce = value;
    },
    get announceNonce() {
      return state.announceNonce;
    },
    set announceNonce(value: boolean) {
      state.announceNonce = value;
    },
    get nonce() {
      return nonce;
    },
    rotateNonce() {
      nonce = `n-${++counter}-${Date.now()}`;
      return nonce;
    },
    revoke: (token) => void revoked.add(token),
    close: () => {
      // Upgraded sockets are no longer the HTTP server's to close.
      for (const client of sockets?.clients ?? []) client.terminate();
      return server.close();
    },
  };
}
