/** Request and response bodies are streamed through, unchanged, never buffered whole. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';

const SIZE = 3 * 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Resolvable from outside: the tests wait on what the other side has seen, never on a clock. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

describe('body streaming', () => {
  let tokens: TestServer;
  let upstream: http.Server;
  let gw: TestGateway;
  const payload = randomBytes(SIZE);
  /** Fires when the upstream has received the first bytes of an upload. */
  let uploadStarted = signal();
  /** Fires when the caller has received the first bytes of a download. */
  let downloadStarted = signal();

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    upstream = http.createServer((req, res) => {
      if (req.url === '/download') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
        const half = SIZE / 2;
        res.write(payload.subarray(0, half));
        // The second half only once the caller holds the first: a gateway that buffers the whole
        // response before answering would wait here forever.
        void downloadStarted.promise.then(() => res.end(payload.subarray(half)));
        return;
      }
      const hash = createHash('sha256');
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        if (size === 0) uploadStarted.fire();
        size += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            size,
            sha256: hash.digest('hex'),
            authorization: req.headers.authorization,
            framing: req.headers['transfer-encoding'] ?? 'length',
          }),
        );
      });
    });
    await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', done));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: streaming-secret } }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - name: files
    match: { pathPrefix: / }
    upstream: ${upstreamUrl}
    auth: { connection: c }
    replayBodyLimit: 1024
`);
  });

  after(async () => {
    await gw.stop();
    upstream.closeAllConnections();
    await new Promise<void>((done) => upstream.close(() => done()));
    await tokens.close();
  });

  /** Sends the payload in two halves; the second only after the upstream has the first. */
  function upload(headers: Record<string, string>): Promise<Record<string, unknown>> {
    uploadStarted = signal();
    const { hostname, port } = new URL(gw.url);
    return new Promise((resolve, reject) => {
      const req = http.request({ hostname, port, path: '/upload', method: 'POST', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>));
      });
      req.on('error', reject);
      req.write(payload.subarray(0, SIZE / 2));
      void uploadStarted.promise.then(() => req.end(payload.subarray(SIZE / 2)));
    });
  }

  it('streams a 3 MB upload with Content-Length through unchanged', { timeout: 10_000 }, async () => {
    const seen = await upload({ 'content-length': String(SIZE), 'content-type': 'application/octet-stream' });
    assert.equal(seen.size, SIZE);
    assert.equal(seen.sha256, sha256(payload));
    assert.equal(seen.framing, 'length');
    assert.equal(seen.authorization, 'Bearer tok-1');
  });

  it('streams a 3 MB chunked upload through unchanged', { timeout: 10_000 }, async () => {
    const seen = await upload({ 'transfer-encoding': 'chunked' });
    assert.equal(seen.size, SIZE);
    assert.equal(seen.sha256, sha256(payload));
    assert.equal(seen.framing, 'chunked');
  });

  it('streams a 3 MB response through unchanged', { timeout: 10_000 }, async () => {
    downloadStarted = signal();
    const { hostname, port } = new URL(gw.url);
    const received = await new Promise<Buffer>((resolve, reject) => {
      http
        .get({ hostname, port, path: '/download' }, (res) => {
          assert.equal(res.statusCode, 200);
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            downloadStarted.fire();
          });
          res.on('end', () => resolve(Buffer.concat(chunks)));
        })
        .on('error', reject);
    });
    assert.equal(received.length, SIZE);
    assert.equal(sha256(received), sha256(payload));
  });
});
