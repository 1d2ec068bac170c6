/**
 * What the forwarding engine (src/proxy/http1/ under src/proxy/upstream-call.ts) must keep beyond the plain
 * request and answer: a slow caller slows the upstream down instead of filling the gateway's
 * memory, and interim 1xx answers before the final one (RFC 9110 §15.2) neither reach the caller
 * nor leave it waiting.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startGateway, type TestGateway } from './support/gateway.js';
import { rawRequest } from './support/raw.js';

const MIB = 1024 * 1024;
const LARGE = 64 * MIB;

interface Upstream {
  port: number;
  /** Bytes of the large answer the upstream has handed to its socket so far. */
  written(): number;
  close(): Promise<void>;
}

/** /large streams LARGE bytes as fast as the gateway takes them; anything else gets a raw `answers[path]` (Latin-1 bytes). */
async function startUpstream(answers: Record<string, string>): Promise<Upstream> {
  let written = 0;
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (head: Buffer) => {
      const path = /^GET (\S+)/.exec(head.toString('latin1'))?.[1] ?? '';
      if (path !== '/large') return socket.end(Buffer.from(answers[path] ?? '', 'latin1'));
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${LARGE}\r\n\r\n`);
      const chunk = Buffer.alloc(MIB, 'x');
      const pump = () => {
        while (written < LARGE) {
          written += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        socket.end();
      };
      pump();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    written: () => written,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Polls until `value()` has not changed for `quietMs`; returns it. */
async function settled(value: () => number, quietMs: number): Promise<number> {
  let last = value();
  for (;;) {
    await delay(quietMs);
    const now = value();
    if (now === last) return now;
    last = now;
  }
}

describe('forwarding engine', () => {
  let gw: TestGateway;
  let upstream: Upstream;

  before(async () => {
    upstream = await startUpstream({
      '/early-hints':
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal',
      '/unasked-continue': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
      '/reason': 'HTTP/1.1 200 Fine By Me\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
      '/trailers':
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\nX-Checksum: 7f\r\nServer-Timing: db;dur=53\r\n\r\n',
      // A quiet upstream: the head goes out before the body (flushed alone), obs-text and all.
      '/obs-text': 'HTTP/1.1 200 OK\r\nX-Name: caf\u00e9 \u0080\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    });
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
routes:
  - name: upstream
    match: { pathPrefix: / }
    upstream: http://127.0.0.1:${upstream.port}
    auth: { type: none }
`);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  it(
    'a caller that stops reading stops the upstream too: the gateway holds a few MiB of a 64 MiB answer, not all of it',
    { timeout: 60_000 },
    async () => {
      const { port } = new URL(gw.url);
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get({ host: '127.0.0.1', port, path: '/large', agent: false }, resolve).once('error', reject),
      );
      assert.equal(res.statusCode, 200);
      res.pause();
      // Paused, the caller's socket fills, then the gateway's, then the upstream's: the upstream
      // stops well short of the whole answer. Without backpressure it would write all 64 MiB.
      const whilePaused = await settled(() => upstream.written(), 300);
      assert.ok(whilePaused < LARGE / 2, `the upstream wrote ${whilePaused / MIB} MiB while the caller read nothing`);
      let received = 0;
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.resume();
      await once(res, 'end');
      assert.equal(received, LARGE);
    },
  );

  it('passes a 103 Early Hints on (RFC 9110 §15.2), then the final response', async () => {
    const response = await fetch(`${gw.url}/early-hints`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'final');
    assert.equal(response.headers.get('link'), null);
    const { text } = await rawRequest(gw.url, `GET /early-hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 103 Early Hints\r\nLink: <\/style\.css>; rel=preload\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  });

  // Regression: Node's standard phrase replaced the upstream's (nginx passes it on).
  it("passes the upstream's reason phrase on", async () => {
    const { text } = await rawRequest(gw.url, `GET /reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 200 Fine By Me\r\n/);
  });

  // Regression: the client read the trailer section and the gateway dropped it.
  it("passes the upstream's trailer fields on after a chunked body (RFC 9110 §6.5)", async () => {
    const { text } = await rawRequest(gw.url, `GET /trailers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(text, /\r\n2\r\nok\r\n0\r\nX-Checksum: 7f\r\nServer-Timing: db;dur=53\r\n\r\n$/);
  });

  // Regression: a head flushed before its body went out as UTF-8, two bytes for each obs-text one.
  it('passes obs-text bytes of an answer header on byte for byte when the head goes out alone', async () => {
    const client = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
    client.write('GET /obs-text HTTP/1.1\r\nHost: x\r\n\r\n');
    const [head] = (await once(client, 'data')) as [Buffer];
    client.destroy();
    assert.ok(head.includes(Buffer.from('X-Name: caf\u00e9 \u0080\r\n', 'latin1')), head.toString('latin1'));
  });

  it('an unasked 100 Continue is passed over (RFC 9110 §15.2: a 1xx is never an error) and the final answer reaches the caller', async () => {
    const { status, text } = await rawRequest(gw.url, 'GET /unasked-continue HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    assert.equal(status, 200);
    // The caller never sees the 100: the gateway does not send Expect, and the caller did not either.
    assert.ok(!text.includes('100 Continue'), text);
    assert.ok(text.endsWith('\r\n\r\nok'), text);
  });
});
