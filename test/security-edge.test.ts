/**
 * The edge under hostile input, over raw sockets: smuggling shapes and malformed headers are
 * refused before anything is forwarded, oversize headers get 431, slow clients are cut off, and no
 * spelling of a path reaches an upstream outside its route or above the upstream's base path.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startServer, startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';

const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1_500;
const MAX_HEADER_BYTES = 4_096;

interface RawResponse {
  status: number;
  text: string;
}

/** Writes `request` on a fresh connection and reads until the gateway closes it. */
async function rawExchange(port: number, request: string | ((socket: net.Socket) => void)): Promise<RawResponse> {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined); // writes after the gateway hung up
  await once(socket, 'connect');
  if (typeof request === 'string') socket.write(request, 'latin1');
  else request(socket);
  await once(socket, 'close');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return { status: status === null ? 0 : Number(status[1]), text };
}

const get = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`;

describe('edge hardening', () => {
  let upstream: TestServer;
  let outside: TestServer;
  let gw: TestGateway;
  let port: number;

  before(async () => {
    upstream = await startServer((req, res) => {
      if (req.url?.startsWith('/hop-base')) {
        res.writeHead(200, {
          connection: 'x-hop-secret',
          'x-hop-secret': 'hop value',
          'proxy-authenticate': 'Basic realm="upstream"',
          'keep-alive': 'timeout=99',
          'x-end-to-end': 'kept',
        });
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' });
      }
      res.end(`upstream saw ${req.url}`);
    });
    // Not named by the config: nothing may ever reach it.
    outside = await startServer((_req, res) => res.end('outside'));
    gw = await startGateway(`
listen:
  host: 127.0.0.1
  headersTimeoutMs: ${HEADERS_TIMEOUT_MS}
  requestTimeoutMs: ${REQUEST_TIMEOUT_MS}
  maxHeaderBytes: ${MAX_HEADER_BYTES}
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: ${upstream.url}/base
    stripPrefix: true
    auth: { type: none }
  - name: hop
    match: { pathPrefix: /hop }
    upstream: ${upstream.url}/hop-base
    stripPrefix: true
    auth: { type: none }
`);
    port = Number(new URL(gw.url).port);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await outside.close();
    assert.equal(outside.received.length, 0, 'a request reached a host the config does not name');
  });

  const refusedBeforeForwarding = async (request: string, status = 400) => {
    const before = upstream.received.length;
    const response = await rawExchange(port, request);
    assert.equal(response.status, status, response.text);
    assert.equal(upstream.received.length, before, 'the refused request was forwarded');
    return response;
  };

  describe('smuggling shapes and malformed headers', () => {
    it('refuses Content-Length together with Transfer-Encoding', async () => {
      await refusedBeforeForwarding(
        'POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nhello',
      );
    });

    it('refuses two Content-Length headers with different values', async () => {
      await refusedBeforeForwarding('POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!');
    });

    it('refuses a Content-Length list', async () => {
      await refusedBeforeForwarding('POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello');
    });

    it('refuses a transfer coding other than chunked', async () => {
      const response = await refusedBeforeForwarding('POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n');
      assert.match(response.text, /"code":"BAD_REQUEST"/);
    });

    it('refuses Transfer-Encoding on an HTTP/1.0 request', async () => {
      const response = await refusedBeforeForwarding('POST /api/x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
      assert.match(response.text, /"code":"BAD_REQUEST"/);
    });

    it('refuses two Host headers', async () => {
      const response = await refusedBeforeForwarding('GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
      assert.match(response.text, /"code":"BAD_REQUEST"/);
    });

    it('refuses an obs-folded header line', async () => {
      await refusedBeforeForwarding('GET /api/x HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n  b\r\nConnection: close\r\n\r\n');
    });

    it('refuses control characters in a header value and spaces in a header name', async () => {
      await refusedBeforeForwarding('GET /api/x HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x01b\r\n\r\n');
      await refusedBeforeForwarding('GET /api/x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n');
      await refusedBeforeForwarding('GET /api/x HTTP/1.1\r\nHost: a\r\nX-Space : x\r\n\r\n');
    });

    it('refuses bare LF line endings', async () => {
      await refusedBeforeForwarding('GET /api/x HTTP/1.1\nHost: a\n\n');
    });

    it('answers headers larger than maxHeaderBytes with 431', async () => {
      await refusedBeforeForwarding(get('/api/x', `X-Big: ${'x'.repeat(MAX_HEADER_BYTES * 2)}\r\n`), 431);
    });
  });

  describe('slow clients', () => {
    it('closes a connection whose headers trickle in slower than headersTimeoutMs (408)', async () => {
      const before = upstream.received.length;
      let timer: NodeJS.Timeout | undefined;
      const response = await rawExchange(port, (socket) => {
        socket.write('GET /api/slow HTTP/1.1\r\nHost: a\r\n');
        let n = 0;
        timer = setInterval(() => socket.write(`X-Drip-${n++}: 1\r\n`), HEADERS_TIMEOUT_MS / 10);
      });
      clearInterval(timer);
      assert.equal(response.status, 408);
      assert.equal(upstream.received.length, before);
    });

    it('closes a connection whose body trickles in slower than requestTimeoutMs, and the upstream never gets the request', async () => {
      const before = upstream.received.length;
      let timer: NodeJS.Timeout | undefined;
      const response = await rawExchange(port, (socket) => {
        socket.write('POST /api/slow-body HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n');
        timer = setInterval(() => socket.write('x'), REQUEST_TIMEOUT_MS / 10);
      });
      clearInterval(timer);
      assert.equal(response.status, 408);
      assert.equal(upstream.received.length, before);
    });
  });

  describe('paths', () => {
    // [request target, status, path the upstream must see (when forwarded)]
    const cases: Array<[string, number, string?]> = [
      ['/api/../../etc/passwd', 400],
      ['/api/%2e%2e/%2E%2E/etc/passwd', 400],
      ['/%2e%2e/api/x', 400],
      ['/api/.%2e/.%2e/x', 400],
      ['/api/..%2f..%2fetc', 400],
      ['/api/%2Fetc', 400],
      ['/api/%5c..%5cx', 400],
      ['/api\\..\\..\\x', 400],
      ['/api/x%00', 400],
      ['/api/x#/../../y', 400],
      // A dot segment with a `;` parameter is `..` or `.` to Tomcat, Jetty and Spring, a name to us.
      ['/api/..;/x', 400],
      ['/api/x/.;x/y', 400],
      ['/api/%2e%2e;/x', 400],
      ['/api/x/%2E%2e;jsessionid=1/y', 400],
      ['/api/x/..%3bx/y', 400],
      ['/api/x/.;', 400],
      ['*', 400],
      ['/api/../admin', 404],
      ['//evil.example/x', 404],
      ['/API/x', 404],
      ['/apix', 404],
      ['/api//evil.example/x', 200, '/base/evil.example/x'],
      ['/api/./x/../y', 200, '/base/y'],
      ['/apix/../api/y', 200, '/base/y'],
      ['/api/x/%2e%2e/z?next=/../../up', 200, '/base/z?next=/../../up'],
      ['/api', 200, '/base'],
      ['/api/x;v=1/y', 200, '/base/x;v=1/y'],
      ['/api/x..;/y', 200, '/base/x..;/y'],
      ['/api/.well-known;v=1', 200, '/base/.well-known;v=1'],
    ];
    for (const [target, status, upstreamPath] of cases) {
      it(`${JSON.stringify(target)} → ${status}${upstreamPath === undefined ? '' : ` at ${upstreamPath}`}`, async () => {
        const before = upstream.received.length;
        const response = await rawExchange(port, get(target));
        assert.equal(response.status, status, response.text);
        if (upstreamPath === undefined) assert.equal(upstream.received.length, before);
        else assert.equal(upstream.received.at(-1)!.url, upstreamPath);
      });
    }

    it('forwards an absolute-form target naming another host to the route upstream, never to that host', async () => {
      const response = await rawExchange(port, get(`http://127.0.0.1:${outside.port}/api/x`));
      assert.equal(response.status, 200);
      const seen = upstream.received.at(-1)!;
      assert.equal(seen.url, '/base/x');
      assert.equal(seen.headers.host, new URL(upstream.url).host);
      assert.equal((await rawExchange(port, get(`http://127.0.0.1:${outside.port}/elsewhere`))).status, 404);
    });

    it('ignores a Host header naming another host', async () => {
      const response = await rawExchange(port, `GET /api/x HTTP/1.1\r\nHost: 127.0.0.1:${outside.port}\r\nConnection: close\r\n\r\n`);
      assert.equal(response.status, 200);
      assert.equal(upstream.received.at(-1)!.headers.host, new URL(upstream.url).host);
    });

    it('never answers CONNECT with a tunnel', async () => {
      const response = await rawExchange(port, `CONNECT 127.0.0.1:${outside.port} HTTP/1.1\r\nHost: 127.0.0.1:${outside.port}\r\n\r\n`);
      assert.notEqual(response.status, 200);
    });
  });

  describe('hop-by-hop headers', () => {
    it('drops hop-by-hop response headers and those the upstream names in Connection', async () => {
      const response = await rawExchange(port, get('/hop/x'));
      assert.equal(response.status, 200);
      const head = response.text.split('\r\n\r\n')[0]!.toLowerCase();
      assert.ok(!head.includes('x-hop-secret'));
      assert.ok(!head.includes('proxy-authenticate'));
      assert.ok(!head.includes('timeout=99'));
      assert.ok(head.includes('x-end-to-end: kept'));
    });

    it('drops hop-by-hop request headers and those the caller names in Connection', async () => {
      await rawExchange(
        port,
        get('/api/x', 'X-Internal: secret\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nConnection: x-internal\r\n'),
      );
      const seen = upstream.received.at(-1)!.headers;
      assert.equal(seen['x-internal'], undefined);
      assert.equal(seen['proxy-authorization'], undefined);
      assert.equal(seen.te, undefined);
    });
  });
});

/** A raw upstream: every byte that reaches it, and a 200 for each request head it reads. */
interface RecordingUpstream {
  port: number;
  /** Everything received, all connections together, in arrival order. */
  received(): string;
  close(): Promise<void>;
}

async function startRecordingUpstream(): Promise<RecordingUpstream> {
  let received = '';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    let pending = '';
    socket.on('data', (chunk: string) => {
      received += chunk;
      pending += chunk;
      // Requests without bodies only: one answer per head.
      for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
        pending = pending.slice(end + 4);
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => received,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

describe('a request pipelined behind a refused one', () => {
  let tokens: TestServer;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  let port: number;

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    upstream = await startRecordingUpstream();
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: token-endpoint-secret } }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - name: tok
    match: { pathPrefix: /tok }
    upstream: http://127.0.0.1:${upstream.port}
    auth: { connection: c }
`);
    port = Number(new URL(gw.url).port);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await tokens.close();
  });

  const behind = 'GET /tok/pipelined HTTP/1.1\r\nHost: a\r\n\r\n';
  const refused: Array<[string, string]> = [
    ['two Host lines', 'GET /tok/first HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    [
      'Transfer-Encoding: identity, chunked',
      'POST /tok/first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n',
    ],
    ['a %2f in the path', 'GET /tok/a%2fb HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a ..; segment', 'GET /tok/..;/first HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['an unsupported target', 'GET ftp://a/tok/first HTTP/1.1\r\nHost: a\r\n\r\n'],
  ];
  for (const [shape, first] of refused) {
    it(`${shape}: 400 and the connection closed; the request behind it in the same write never reaches the upstream`, async () => {
      // One write, as a smuggler sends it: the gateway reads both requests from the same buffer.
      const response = await rawExchange(port, first + behind);
      assert.equal(response.status, 400, response.text);
      assert.equal(response.text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `more than one answer: ${response.text}`);
      // A request sent afterwards, on its own connection, arrives: had the pipelined one been
      // forwarded, it would have been sent first (it was read first and waited on the same token).
      const control = await rawExchange(port, 'GET /tok/control HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.equal(control.status, 200, control.text);
      assert.doesNotMatch(upstream.received(), /pipelined|first/);
    });
  }

  it('two well-formed requests pipelined in one write are both answered and forwarded', async () => {
    const response = await rawExchange(
      port,
      'GET /tok/one HTTP/1.1\r\nHost: a\r\n\r\nGET /tok/two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    assert.equal(response.text.match(/HTTP\/1\.1 200/g)?.length, 2, response.text);
    assert.match(upstream.received(), /GET \/tok\/one /);
    assert.match(upstream.received(), /GET \/tok\/two /);
  });
});
