/**
 * WebSocket (RFC 6455) through the gateway, with the `ws` package on both sides: the handshake
 * gets the injected token and the header hygiene of any request, the upstream's 101 is relayed,
 * frames flow both ways until either side closes, and nothing is left open behind them.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { startDpopResourceServer, type DpopResourceServer } from './support/dpop-resource-server.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { requireProgram } from './support/programs.js';
import { Queue } from './support/queue.js';
import { freePort, startServer, startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';
import { testPki } from './support/tls.js';

const LARGE = 4 * 1024 * 1024;
const ACCESS_KEY = 'websocket-access-key-0123456789';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** What the upstream saw of one handshake. */
interface Handshake {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
  /** Resolves with the upstream's close code once its side of the connection is closed (0 for a refused one). */
  readonly closed: Promise<number>;
}

/**
 * An upstream that echoes every message and greets each connection. `/refuse` answers 403; a
 * handshake with a token in `revoked` gets 401 invalid_token (RFC 6750 §3.1).
 */
async function startWebSocketUpstream(): Promise<{
  server: TestServer;
  handshakes: Handshake[];
  revoked: Set<string>;
  close(): Promise<void>;
}> {
  const handshakes: Handshake[] = [];
  const revoked = new Set<string>();
  const server = await startServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, upgrade: req.headers.upgrade ?? null }));
  });
  const sockets = new WebSocketServer({ noServer: true, maxPayload: 2 * LARGE });
  const refuse = (socket: Duplex, status: string, headers: string, body: string) =>
    socket.end(`HTTP/1.1 ${status}\r\n${headers}content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  server.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const seen = { url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders };
    const token = req.headers.authorization?.replace(/^Bearer /, '');
    if (req.url === '/refuse' || (token !== undefined && revoked.has(token))) {
      handshakes.push({ ...seen, closed: Promise.resolve(0) });
      if (req.url === '/refuse') return refuse(socket, '403 Forbidden', 'content-type: text/plain\r\n', 'not you');
      return refuse(socket, '401 Unauthorized', 'www-authenticate: Bearer error="invalid_token"\r\n', '');
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      const closed = new Promise<number>((resolve) => ws.once('close', resolve));
      handshakes.push({ ...seen, closed });
      ws.on('message', (data: RawData, isBinary) => {
        const text = isBinary ? '' : (data as Buffer).toString();
        if (text === 'close please') ws.close(4001, 'bye');
        else if (text === 'drop please') ws.terminate();
        else ws.send(data, { binary: isBinary });
      });
      ws.send('hello from upstream');
    });
  });
  return {
    server,
    handshakes,
    revoked,
    close: () => {
      for (const client of sockets.clients) client.terminate();
      return server.close();
    },
  };
}

/** A caller's connection, open, with its messages queued from the first on. */
async function open(url: string, options: { protocols?: string[]; headers?: Record<string, string> } = {}) {
  const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers, maxPayload: 2 * LARGE });
  const messages = new Queue<{ data: Buffer; isBinary: boolean }>();
  ws.on('message', (data: RawData, isBinary) => messages.push({ data: data as Buffer, isBinary }));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, messages, closed };
}

/** The gateway's answer to a handshake it (or the upstream) did not accept. */
function refused(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => reject(new Error('the handshake was accepted')));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => (body += text));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
  });
}

async function metric(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${gw.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? Number.NaN : Number(line.split(' ').at(-1));
}

/** Polls the gauge until it reads `value` (a condition, not a clock: the bound only ends a failing test). */
async function gaugeReaches(gw: TestGateway, route: string, value: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await metric(gw, 'tokengate_websocket_connections', `route="${route}"`)) === value) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`tokengate_websocket_connections{route="${route}"} never reached ${value}`);
}

const rawValues = (handshake: Handshake, name: string) =>
  handshake.rawHeaders.filter((_v, i, all) => i % 2 === 1 && all[i - 1]!.toLowerCase() === name);

describe('WebSocket', () => {
  let tokens: TestServer;
  let upstream: Awaited<ReturnType<typeof startWebSocketUpstream>>;
  let gw: TestGateway;
  let ws: string;

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    upstream = await startWebSocketUpstream();
    const nowhere = await freePort();
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets:
  s: { value: websocket-secret }
  key: { value: ${ACCESS_KEY} }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - name: live
    match: { pathPrefix: /live }
    upstream: ${upstream.server.url}/v1
    stripPrefix: true
    auth: { connection: c }
  - name: open
    match: { pathPrefix: /open }
    upstream: ${upstream.server.url}
    stripPrefix: true
    auth: { type: none }
  - name: plain
    match: { pathPrefix: /plain }
    upstream: ${upstream.server.url}
    stripPrefix: true
    auth: { connection: c }
    websocket: false
  - name: guarded
    match: { pathPrefix: /guarded }
    upstream: ${upstream.server.url}
    stripPrefix: true
    auth: { connection: c }
    access: { header: X-Gateway-Key, apiKeys: [ { secret: key } ] }
  - name: refusing
    match: { pathPrefix: /refusing }
    upstream: ${upstream.server.url}/refuse
    stripPrefix: true
    auth: { connection: c }
  - name: down
    match: { pathPrefix: /down }
    upstream: http://127.0.0.1:${nowhere}
    auth: { type: none }
`);
    ws = gw.url.replace(/^http/, 'ws');
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await tokens.close();
  });

  it('text, binary and a 4 MiB message go both ways unchanged', { timeout: 60_000 }, async () => {
    const caller = await open(`${ws}/live/echo`);
    assert.equal(String((await caller.messages.next()).data), 'hello from upstream');
    caller.ws.send('héllo');
    assert.deepEqual(await caller.messages.next().then((m) => [String(m.data), m.isBinary]), ['héllo', false]);
    const small = randomBytes(300);
    caller.ws.send(small);
    const binary = await caller.messages.next();
    assert.equal(binary.isBinary, true);
    assert.deepEqual(binary.data, small);
    const large = randomBytes(LARGE);
    caller.ws.send(large);
    const echoed = await caller.messages.next();
    assert.equal(echoed.data.length, LARGE);
    assert.equal(sha256(echoed.data), sha256(large));
    caller.ws.close(1000, 'done');
    assert.deepEqual(await caller.closed, { code: 1000, reason: 'done' });
  });

  it('the handshake reaches the upstream with the injected token and the header hygiene of any request', async () => {
    const caller = await open(`${ws}/live/chat?room=7`, {
      protocols: ['chat.v2'],
      headers: {
        authorization: 'Bearer the-callers-own',
        dpop: 'a-callers-proof',
        'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
        'x-kept': 'end-to-end',
        'x-request-id': 'ws-request-1',
      },
    });
    // ws writes the 101 after the upgrade callback has recorded the handshake.
    const handshake = upstream.handshakes.at(-1)!;
    assert.equal(handshake.url, '/v1/chat?room=7');
    assert.deepEqual(rawValues(handshake, 'authorization'), ['Bearer tok-1']);
    for (const name of ['dpop', 'proxy-authorization']) assert.equal(handshake.headers[name], undefined, name);
    assert.equal(handshake.headers.upgrade, 'websocket');
    assert.equal(handshake.headers.connection, 'upgrade');
    assert.equal(handshake.headers['x-kept'], 'end-to-end');
    assert.equal(handshake.headers['x-request-id'], 'ws-request-1');
    assert.equal(handshake.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(handshake.headers['x-forwarded-proto'], 'http');
    assert.equal(handshake.headers['x-forwarded-host'], new URL(gw.url).host);
    assert.equal(handshake.headers.host, new URL(upstream.server.url).host);
    // The subprotocol is negotiated end to end (RFC 6455 §4.2.2 Sec-WebSocket-Protocol).
    assert.equal(caller.ws.protocol, 'chat.v2');
    caller.ws.close();
    await caller.closed;
  });

  it('counts the handshake as code="101" and the open connection in tokengate_websocket_connections', async () => {
    const before = await metric(gw, 'tokengate_requests_total', 'route="open",method="GET",code="101"');
    const caller = await open(`${ws}/open/counted`);
    assert.equal(await metric(gw, 'tokengate_requests_total', 'route="open",method="GET",code="101"'), (before || 0) + 1);
    assert.equal(await metric(gw, 'tokengate_websocket_connections', 'route="open"'), 1);
    const line = gw.logs.findLast((l) => l.event === 'access' && l.route === 'open')!;
    assert.equal(line.status, 101);
    caller.ws.close();
    await caller.closed;
    await gaugeReaches(gw, 'open', 0);
  });

  it('route.websocket: false answers a handshake 400 BAD_REQUEST, problem+json, and the upstream sees none', async () => {
    const before = upstream.handshakes.length;
    const answer = await refused(`${ws}/plain/chat`);
    assert.equal(answer.status, 400);
    assert.equal(answer.headers['content-type'], 'application/problem+json');
    const problem = JSON.parse(answer.body) as { code: string; route: string };
    assert.equal(problem.code, 'BAD_REQUEST');
    assert.equal(problem.route, 'plain');
    assert.equal(upstream.handshakes.length, before);
    // Ordinary requests on that route are forwarded as ever.
    assert.equal((await fetch(`${gw.url}/plain/chat`)).status, 200);
  });

  it("a handshake the route's access policy refuses is 401 ACCESS_DENIED, and the key never reaches the upstream", async () => {
    const before = upstream.handshakes.length;
    const answer = await refused(`${ws}/guarded/chat`);
    assert.equal(answer.status, 401);
    assert.equal((JSON.parse(answer.body) as { code: string }).code, 'ACCESS_DENIED');
    assert.equal(upstream.handshakes.length, before);
    const caller = await open(`${ws}/guarded/chat`, { headers: { 'x-gateway-key': ACCESS_KEY } });
    assert.equal(upstream.handshakes.at(-1)!.headers['x-gateway-key'], undefined);
    caller.ws.close();
    await caller.closed;
  });

  it('no route, an ambiguous path and an unreachable upstream get the errors of any request', async () => {
    assert.equal(JSON.parse((await refused(`${ws}/elsewhere`)).body).code, 'ROUTE_NOT_FOUND');
    const down = await refused(`${ws}/down/chat`);
    assert.equal(down.status, 502);
    assert.equal(JSON.parse(down.body).code, 'UPSTREAM_UNAVAILABLE');
    // A URL object would normalise the path: the raw request line keeps it as sent.
    const ambiguous = await new Promise<http.IncomingMessage>((resolve) =>
      http
        .request(`${gw.url}/live/a%2fb`, {
          headers: {
            connection: 'Upgrade',
            upgrade: 'websocket',
            'sec-websocket-version': '13',
            'sec-websocket-key': randomBytes(16).toString('base64'),
          },
        })
        .on('response', resolve)
        .end(),
    );
    assert.equal(ambiguous.statusCode, 400);
    ambiguous.resume();
  });

  it("the upstream's refusal (403) is relayed with its body", async () => {
    const answer = await refused(`${ws}/refusing`);
    assert.equal(answer.status, 403);
    assert.equal(answer.body, 'not you');
    assert.ok(answer.headers['x-request-id']);
  });

  it('a token refresh while a connection is open: the open connection is unaffected, the next handshake gets the new token', async () => {
    const first = await open(`${ws}/live/first`);
    const current = upstream.handshakes.at(-1)!.headers.authorization!.replace(/^Bearer /, '');
    await first.messages.next();
    // The upstream now refuses that token (invalid_token): the next handshake gets a 401, the
    // gateway drops the token, fetches a new one and replays the handshake once.
    upstream.revoked.add(current);
    const tokenRequests = tokens.received.length;
    const second = await open(`${ws}/live/second`);
    assert.equal(tokens.received.length, tokenRequests + 1);
    const [refusedOne, acceptedOne] = upstream.handshakes.slice(-2);
    assert.equal(refusedOne!.headers.authorization, `Bearer ${current}`);
    assert.equal(acceptedOne!.url, '/v1/second');
    assert.notEqual(acceptedOne!.headers.authorization, `Bearer ${current}`);
    assert.match(acceptedOne!.headers.authorization!, /^Bearer tok-\d+$/);
    // The first connection still carries frames both ways.
    first.ws.send('still here');
    assert.equal(String((await first.messages.next()).data), 'still here');
    second.ws.send('me too');
    await second.messages.next();
    assert.equal(String((await second.messages.next()).data), 'me too');
    first.ws.close();
    second.ws.close();
    await Promise.all([first.closed, second.closed]);
  });

  it('a caller that disappears: the upstream side is closed and no socket is left behind', async () => {
    const caller = await open(`${ws}/open/vanishing`);
    const handshake = upstream.handshakes.at(-1)!;
    assert.equal(await metric(gw, 'tokengate_websocket_connections', 'route="open"'), 1);
    // No close frame: the caller's socket just goes.
    caller.ws.terminate();
    assert.equal(await handshake.closed, 1006);
    await gaugeReaches(gw, 'open', 0);
    const open_ = await new Promise<number>((resolve, reject) =>
      upstream.server.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );
    assert.equal(open_, 0, 'the upstream holds no connection from the gateway');
  });

  it("the upstream closing ends the caller's connection, with its close code, or as abnormal when it just drops", async () => {
    const polite = await open(`${ws}/open/polite`);
    polite.ws.send('close please');
    assert.deepEqual(await polite.closed, { code: 4001, reason: 'bye' });
    const rude = await open(`${ws}/open/rude`);
    rude.ws.send('drop please');
    assert.equal((await rude.closed).code, 1006);
    await gaugeReaches(gw, 'open', 0);
  });

  it('bytes sent right behind the handshake reach the upstream; a caller that resets mid-stream harms nothing', async () => {
    const { port } = new URL(gw.url);
    const socket = connect(Number(port), '127.0.0.1');
    const received: Buffer[] = [];
    let head = '';
    const switched = new Promise<void>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        head = Buffer.concat(received).toString('latin1');
        if (head.includes('early bird')) resolve();
      }),
    );
    // A masked text frame (RFC 6455 §5.2) in the same write as the handshake.
    const payload = Buffer.from('early bird');
    const mask = randomBytes(4);
    const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((byte, i) => byte ^ mask[i % 4]!)]);
    socket.write(
      Buffer.concat([
        Buffer.from(
          `GET /open/raw HTTP/1.1\r\nHost: ${new URL(gw.url).host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
            `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
        ),
        frame,
      ]),
    );
    await switched;
    assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(head, /\r\nUpgrade: websocket\r\n/i);
    assert.match(head, /\r\nConnection: Upgrade\r\n/i);
    assert.match(head, /\r\nSec-WebSocket-Accept: /i);
    socket.resetAndDestroy();
    await gaugeReaches(gw, 'open', 0);
    // The gateway is still there.
    const next = await open(`${ws}/open/after-reset`);
    next.ws.close();
    await next.closed;
  });

  it('an Upgrade other than websocket (h2c) is served as the ordinary request it also is', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        `${gw.url}/open/h2c`,
        {
          method: 'POST',
          headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' },
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end('the body');
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.body), { url: '/h2c', upgrade: null });
    const seen = upstream.server.received.at(-1)!;
    assert.equal(seen.body.toString(), 'the body');
    assert.equal(seen.headers['http2-settings'], undefined);
  });
});

describe('WebSocket and graceful shutdown', () => {
  it('a drain ends the WebSocket connections still open when its deadline passes', async () => {
    const upstream = await startWebSocketUpstream();
    const gw = await startGateway(`
listen: { host: 127.0.0.1 }
routes:
  - name: open
    match: { pathPrefix: / }
    upstream: ${upstream.server.url}
    auth: { type: none }
`);
    const caller = await open(`${gw.url.replace(/^http/, 'ws')}/held`);
    const handshake = upstream.handshakes.at(-1)!;
    await gw.gateway.stop(200);
    assert.equal((await caller.closed).code, 1006);
    await handshake.closed;
    await upstream.close();
  });
});

describe('WebSocket on an HTTPS listener', requireProgram('openssl', 'openssl'), () => {
  it('wss:// is tunnelled like ws://, and an h2c upgrade over TLS is served as an ordinary request', async () => {
    const pki = testPki();
    const upstream = await startWebSocketUpstream();
    const gw = await startGateway(
      `
listen: { host: 127.0.0.1, tls: { certificate: listener-cert, key: listener-key } }
secrets:
  listener-cert: { file: server.crt }
  listener-key: { file: server.key }
routes:
  - name: secure
    match: { pathPrefix: / }
    upstream: ${upstream.server.url}
    auth: { type: none }
`,
      { files: { 'server.crt': pki.server.cert, 'server.key': pki.server.key } },
    );
    const ws = new WebSocket(`${gw.url.replace(/^https/, 'wss')}/secure`, { ca: pki.ca.cert });
    const messages = new Queue<string>();
    ws.on('message', (data: Buffer) => messages.push(data.toString()));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    assert.equal(await messages.next(), 'hello from upstream');
    ws.send('over tls');
    assert.equal(await messages.next(), 'over tls');
    assert.equal(upstream.handshakes.at(-1)!.headers['x-forwarded-proto'], 'https');
    ws.close();
    await new Promise((resolve) => ws.once('close', resolve));
    const status = await new Promise<number>((resolve, reject) =>
      https
        .request(`${gw.url}/h2c`, {
          ca: pki.ca.cert,
          headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': '' },
        })
        .on('response', (res) => resolve(res.resume().statusCode ?? 0))
        .on('error', reject)
        .end(),
    );
    assert.equal(status, 200);
    await gw.stop();
    await upstream.close();
  });
});

describe('WebSocket across a reload', () => {
  it("a connection on a route the reload removes stays open, and that route's gauge series goes when it closes", async () => {
    const upstream = await startWebSocketUpstream();
    const yaml = (route: string) => `
listen: { host: 127.0.0.1 }
routes:
  - name: ${route}
    match: { pathPrefix: / }
    upstream: ${upstream.server.url}
    auth: { type: none }
`;
    const gw = await startGateway(yaml('before'));
    const caller = await open(`${gw.url.replace(/^http/, 'ws')}/kept`);
    await caller.messages.next();
    writeFileSync(gw.configFile, yaml('after'));
    assert.equal((await gw.gateway.reload()).ok, true);
    caller.ws.send('still open');
    assert.equal(String((await caller.messages.next()).data), 'still open');
    assert.equal(await metric(gw, 'tokengate_websocket_connections', 'route="before"'), 1);
    assert.equal(await metric(gw, 'tokengate_websocket_connections', 'route="after"'), 0);
    caller.ws.close();
    await caller.closed;
    for (let i = 0; i < 200 && !Number.isNaN(await metric(gw, 'tokengate_websocket_connections', 'route="before"')); i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    assert.ok(Number.isNaN(await metric(gw, 'tokengate_websocket_connections', 'route="before"')), 'the removed route is no longer listed');
    await gw.stop();
    await upstream.close();
  });
});

describe('WebSocket on a DPoP route', () => {
  let oidc: OidcServer;
  let rs: DpopResourceServer;
  let gw: TestGateway;
  const secret = `dpop-ws-secret-${randomUUID()}`;

  before(async () => {
    oidc = await startOidcProvider(
      [{ client_id: 'dpop-ws', client_secret: secret, token_endpoint_auth_method: 'client_secret_basic', dpop_bound_access_tokens: true }],
      { features: { dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => false } } },
    );
    rs = await startDpopResourceServer({ introspect: (token) => oidc.introspect(token), websocket: true });
    gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets: { client: { env: TG_DPOP_WS_SECRET } }
connections:
  bound: { clientId: dpop-ws, tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: client }, dpop: {} }
routes:
  - name: bound
    match: { pathPrefix: /bound }
    upstream: ${rs.url}/v1
    stripPrefix: true
    auth: { connection: bound }
`,
      { env: { ...process.env, TG_DPOP_WS_SECRET: secret } },
    );
  });

  after(async () => {
    await gw.stop();
    await rs.close();
    await oidc.close();
  });

  it('the handshake carries a DPoP proof with htm GET and the htu of the upstream URL, which the resource server accepts', async () => {
    const ws = new WebSocket(`${gw.url.replace(/^http/, 'ws')}/bound/feed?since=1`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const check = rs.checks.at(-1)!;
    // The resource server checked htm against GET and htu against its own origin + /v1/feed.
    assert.equal(check.ok, true, check.reason);
    assert.equal(check.method, 'GET');
    assert.equal(check.url, '/v1/feed?since=1');
    ws.send('bound');
    assert.equal((await new Promise<Buffer>((resolve) => ws.once('message', resolve))).toString(), 'bound');
    ws.close();
    await new Promise((resolve) => ws.once('close', resolve));
  });
});
