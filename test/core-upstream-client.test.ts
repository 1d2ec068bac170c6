/**
 * tokengate's own HTTP/1.1 upstream client (src/proxy/http1/, decision 0008) on its own, against
 * real node HTTP servers and raw sockets: what it writes, how it reuses and limits connections, how
 * it reads interim answers and upgrades, and how its two time-outs and its failures end a request.
 * node's own HTTP server is the oracle for the head it writes: what that parser reads is what the
 * client meant to send.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Http1Handler, Http1Request } from '../src/proxy/http1/connection.js';
import { Http1Pool } from '../src/proxy/http1/pool.js';

interface Outcome {
  /** Every head, interim ones first: [status, reason, header lines]. */
  heads: Array<[number, string, string[]]>;
  body: string;
  trailers: string[];
  error?: Error & { code?: string };
  upgraded?: Duplex;
}

/** A handler that records what the pool tells it; `done` settles when the request has ended. */
function recorder(): { handler: Http1Handler; done: Promise<Outcome> } {
  const outcome: Outcome = { heads: [], body: '', trailers: [] };
  let settle!: (value: Outcome) => void;
  const done = new Promise<Outcome>((resolve) => (settle = resolve));
  const handler: Http1Handler = {
    onConnect: () => undefined,
    onHeaders: (status, raw, _resume, reason) => {
      outcome.heads.push([status, reason, raw]);
      return true;
    },
    onReadEnd: () => undefined,
    onData: (chunk) => {
      outcome.body += chunk.toString('latin1');
      return true;
    },
    onComplete: (trailers) => {
      outcome.trailers = trailers;
      settle(outcome);
    },
    onError: (error) => {
      outcome.error = error;
      settle(outcome);
    },
    onUpgrade: (_status, raw, socket) => {
      outcome.heads.push([101, '', raw]);
      outcome.upgraded = socket;
      settle(outcome);
    },
  };
  return { handler, done };
}

function request(overrides: Partial<Http1Request> = {}): Http1Request {
  return { method: 'GET', path: '/', headers: ['host', 'upstream.test'], body: null, headersTimeoutMs: 5_000, ...overrides };
}

function send(pool: Http1Pool, req: Http1Request = request()): Promise<Outcome> {
  const { handler, done } = recorder();
  pool.dispatch(req, handler);
  return done;
}

const closers: Array<() => unknown> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function listen(server: net.Server): Promise<URL> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  closers.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
}

function pool(origin: URL, options: Partial<{ connections: number; connectMs: number }> = {}): Http1Pool {
  const created = new Http1Pool(origin, { connections: 8, connectMs: 2_000, ...options });
  closers.push(() => created.destroy());
  return created;
}

/** A raw upstream: each connection's first request head goes to `answer`, which writes what it likes. */
async function rawUpstream(answer: (socket: Socket, head: string) => void): Promise<{ origin: URL; heads: string[] }> {
  const heads: string[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      const end = seen.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = seen.slice(0, end + 4);
      seen = seen.slice(end + 4);
      heads.push(head);
      answer(socket, head);
    });
  });
  return { origin: await listen(server), heads };
}

describe('http1 client: connections', () => {
  it('carries sequential requests on one keep-alive connection', async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', () => connections++);
    const client = pool(await listen(server));
    for (let i = 0; i < 5; i++) assert.equal((await send(client)).body, 'ok');
    assert.equal(connections, 1);
  });

  it('opens no more than `connections` sockets and serves the requests beyond them in turn', async () => {
    let open = 0;
    let most = 0;
    const held: Array<[http.ServerResponse, string]> = [];
    const server = http.createServer((req, res) => {
      held.push([res, req.url!]);
      // Answered once two are waiting: a third socket would show as a third waiting request.
      if (held.length >= 2) for (const [waiting, url] of held.splice(0)) waiting.end(url);
    });
    server.on('connection', (socket: Socket) => {
      most = Math.max(most, ++open);
      socket.once('close', () => open--);
    });
    const client = pool(await listen(server), { connections: 2 });
    const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => send(client, request({ path: `/${i}` }))));
    assert.deepEqual(
      outcomes.map((o) => o.body),
      ['/0', '/1', '/2', '/3', '/4', '/5'],
    );
    assert.equal(most, 2);
  });

  it('drops a connection the upstream sends bytes on while it is idle, and serves the next request on a new one', async () => {
    const sockets: Socket[] = [];
    const { origin } = await rawUpstream((socket) => {
      sockets.push(socket);
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      // An answer nobody asked for, on a connection that is back in the pool.
      setImmediate(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate'));
    });
    const client = pool(origin);
    assert.equal((await send(client)).body, 'ok');
    // The stray answer makes the client close the first connection.
    await once(sockets[0]!, 'close');
    const next = await send(client);
    assert.equal(next.body, 'ok');
    assert.equal(sockets.length, 2);
  });

  it('fails the requests still waiting when the pool is destroyed', async () => {
    const { origin } = await rawUpstream(() => undefined);
    const client = new Http1Pool(origin, { connections: 1, connectMs: 2_000 });
    const first = send(client);
    const waiting = send(client);
    await client.destroy();
    assert.equal((await waiting).error?.code, 'UND_ERR_DESTROYED');
    assert.ok((await first).error !== undefined);
  });
});

describe('http1 client: the request head', () => {
  it('writes the request line, host first, connection, the lines in order and case, then the framing', async () => {
    const { origin, heads } = await rawUpstream((socket) => socket.write('HTTP/1.1 204 No Content\r\n\r\n'));
    const client = pool(origin);
    await send(client, request({ method: 'POST', path: '/a?b=c', headers: ['X-One', '1', 'host', 'upstream.test', 'x-two', '2'] }));
    assert.equal(
      heads[0],
      'POST /a?b=c HTTP/1.1\r\nhost: upstream.test\r\nconnection: keep-alive\r\nX-One: 1\r\nx-two: 2\r\ncontent-length: 0\r\n\r\n',
    );
    await send(client, request({ method: 'GET' }));
    assert.equal(heads[1], 'GET / HTTP/1.1\r\nhost: upstream.test\r\nconnection: keep-alive\r\n\r\n');
    await send(client, request({ method: 'PUT', body: Buffer.from('hello') }));
    assert.match(heads[2]!, /\r\ncontent-length: 5\r\n\r\n$/);
  });

  it('sends HEAD with connection: close, so that a body an upstream sends anyway cannot become the next answer', async () => {
    const { origin, heads } = await rawUpstream((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'));
    const outcome = await send(pool(origin), request({ method: 'HEAD' }));
    assert.match(heads[0]!, /\r\nconnection: close\r\n/);
    assert.equal(outcome.heads[0]![0], 200);
    assert.equal(outcome.body, '');
  });

  it("every generated header list reaches node's HTTP server as it was sent; a value with CR, LF or NUL is refused and nothing is sent", async () => {
    let received: string[] = [];
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      received = req.rawHeaders;
      res.end();
    });
    const client = pool(await listen(server));
    const name = fc
      .stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/)
      .filter(
        (n) =>
          !['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect'].includes(
            n.toLowerCase(),
          ),
      );
    const value = fc.stringMatching(/^[\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff]{0,30}[\x21-\x7e\x80-\xff])?$/);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(name, value), { maxLength: 12 }), async (lines) => {
        const headers = ['host', 'upstream.test', ...lines.flat()];
        const outcome = await send(client, request({ headers }));
        assert.equal(outcome.error, undefined);
        assert.deepEqual(received.slice(4), lines.flat());
      }),
      { numRuns: 60 },
    );
    const before = requests;
    for (const bad of ['a\r\nx-injected: 1', 'a\nb', 'a\0b', 'a\rb']) {
      const outcome = await send(client, request({ headers: ['host', 'upstream.test', 'authorization', `Bearer ${bad}`] }));
      assert.equal(outcome.error?.code, 'UND_ERR_INVALID_ARG', JSON.stringify(bad));
    }
    const named = await send(client, request({ headers: ['host', 'upstream.test', 'bad name', 'v'] }));
    assert.equal(named.error?.code, 'UND_ERR_INVALID_ARG');
    assert.equal(requests, before);
    // The connection stays good: nothing was written on it.
    assert.equal((await send(client)).error, undefined);
  });
});

describe('http1 client: answers', () => {
  it('passes interim answers (100, 102, 103) before the final one, and its trailers after the body', async () => {
    const { origin } = await rawUpstream((socket) =>
      socket.write(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' +
          'HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 42\r\n\r\n',
      ),
    );
    const outcome = await send(pool(origin));
    assert.deepEqual(
      outcome.heads.map(([status, reason]) => [status, reason]),
      [
        [100, 'Continue'],
        [102, 'Processing'],
        [103, 'Early Hints'],
        [200, 'Fine'],
      ],
    );
    assert.deepEqual(outcome.heads[2]![2], ['Link', '</a.css>; rel=preload']);
    assert.equal(outcome.body, 'ok');
    assert.deepEqual(outcome.trailers, ['X-Sum', '42']);
  });

  it('fails a request that gets a 101 it did not ask for (EPROTO)', async () => {
    const { origin } = await rawUpstream((socket) =>
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n'),
    );
    assert.equal((await send(pool(origin))).error?.code, 'EPROTO');
  });

  it('hands an upgrade its socket with the bytes that came right after the 101', async () => {
    const { origin, heads } = await rawUpstream((socket) =>
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\nfirst bytes'),
    );
    const outcome = await send(pool(origin), request({ upgrade: 'echo' }));
    assert.match(heads[0]!, /\r\nconnection: upgrade\r\nupgrade: echo\r\n/);
    const socket = outcome.upgraded!;
    assert.ok(socket !== undefined);
    const data = once(socket, 'data');
    socket.resume();
    const [chunk] = (await data) as [Buffer];
    assert.equal(chunk.toString(), 'first bytes');
    socket.destroy();
  });

  it('ends a request whose upstream closes before the answer is complete with an error, never as a whole answer', async () => {
    const { origin } = await rawUpstream((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'));
    const outcome = await send(pool(origin));
    assert.ok(outcome.error !== undefined);
    assert.equal(outcome.body, 'short');
  });
});

describe('http1 client: time-outs', () => {
  it('fails with UND_ERR_HEADERS_TIMEOUT once timeouts.responseMs has passed without a head, not before', async () => {
    const { origin } = await rawUpstream(() => undefined);
    const started = performance.now();
    const outcome = await send(pool(origin), request({ headersTimeoutMs: 150 }));
    assert.equal(outcome.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
    assert.ok(performance.now() - started >= 149, `after ${performance.now() - started} ms`);
  });

  it('keeps a shorter deadline of a later request on the same connection (the timer is re-armed for it)', async () => {
    let count = 0;
    const { origin } = await rawUpstream((socket) => {
      // The first request is answered, the second never is.
      if (count++ === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    });
    const client = pool(origin, { connections: 1 });
    assert.equal((await send(client, request({ headersTimeoutMs: 10_000 }))).error, undefined);
    const started = performance.now();
    const outcome = await send(client, request({ headersTimeoutMs: 100 }));
    assert.equal(outcome.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
    // Well before the first request's 10 s: the timer that request armed did not decide.
    assert.ok(performance.now() - started < 5_000);
  });

  it('fails with UND_ERR_CONNECT_TIMEOUT when a TLS handshake never completes, and so do the requests waiting behind it', async () => {
    // Accepts TCP, never speaks TLS.
    const silent = await listen(net.createServer((socket) => socket.on('error', () => undefined)));
    const client = pool(new URL(`https://127.0.0.1:${silent.port}`), { connections: 1, connectMs: 100 });
    const [first, waiting] = await Promise.all([send(client), send(client)]);
    assert.equal(first.error?.code, 'UND_ERR_CONNECT_TIMEOUT');
    assert.equal(waiting.error?.code, 'UND_ERR_CONNECT_TIMEOUT');
  });
});
