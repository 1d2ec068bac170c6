/**
 * Test peers: an upstream that records what it received, and a token endpoint of our own for the
 * faults a real authorization server will not produce (resets, hangs, malformed answers).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface TestServer {
  url: string;
  port: number;
  server: http.Server;
  received: Recorded[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer, index: number) => void;

export async function startServer(handler: Handler): Promise<TestServer> {
  const received: Recorded[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      handler(req, res, body, received.length - 1);
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    received,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** An upstream answering 200 with a JSON echo of what it received (token included, for the tests). */
export function startEchoUpstream(): Promise<TestServer> {
  return startServer((req, res, body) => {
    const payload = JSON.stringify({
      method: req.method,
      url: req.url,
      authorization: req.headers.authorization ?? null,
      bodyLength: body.length,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'echo' });
    res.end(payload);
  });
}

/** A token endpoint answering each request with `respond` (index counts from 0). */
export function startTokenEndpoint(respond: Handler): Promise<TestServer> {
  return startServer(respond);
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A token endpoint that issues `tok-<n>` Bearer tokens. */
export function tokenIssuer(expiresIn: number | undefined = 300): Handler {
  return (_req, res, _body, index) =>
    json(res, 200, {
      access_token: `tok-${index + 1}`,
      token_type: 'Bearer',
      ...(expiresIn === undefined ? {} : { expires_in: expiresIn }),
    });
}

/** A loopback port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}
