/**
 * Server-Sent Events reach the caller event by event: the upstream sends each event only when the
 * test tells it to, and the test tells it to send the next one only once the caller holds the
 * last. A gateway that buffered the answer, or any part of it, would never deliver the first.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { Queue } from './support/queue.js';
import { startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';

/** One event stream as the upstream holds it. */
interface UpstreamStream {
  readonly authorization: string | undefined;
  send(id: number, data: string): void;
  /** Resolves when the upstream's connection to the gateway is gone. */
  readonly closed: Promise<void>;
}

/** The caller's side: the response, and its events parsed as they come (WHATWG HTML §9.2.6, enough of it). */
async function subscribe(
  url: string,
): Promise<{ res: http.IncomingMessage; events: Queue<{ id: string; data: string }>; req: http.ClientRequest }> {
  const events = new Queue<{ id: string; data: string }>();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream' } }, (res) => {
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        buffered += text;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) !== -1) {
          const fields = new Map(
            buffered
              .slice(0, end)
              .split('\n')
              .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
          );
          buffered = buffered.slice(end + 2);
          events.push({ id: fields.get('id') ?? '', data: fields.get('data') ?? '' });
        }
      });
      res.on('error', () => undefined);
      resolve({ res, events, req });
    });
    req.on('error', reject);
  });
}

describe('Server-Sent Events', () => {
  let tokens: TestServer;
  let upstream: http.Server;
  let gw: TestGateway;
  const streams = new Queue<UpstreamStream>();

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    upstream = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      // The head goes now, with no event yet (Node would otherwise hold it for the first write).
      res.flushHeaders();
      streams.push({
        authorization: req.headers.authorization,
        send: (id, data) => res.write(`id: ${id}\ndata: ${data}\n\n`),
        closed: new Promise((resolve) => res.once('close', resolve)),
      });
    });
    await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', done));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: sse-secret } }
connections:
  c: { clientId: gw, tokenUrl: ${tokens.url}/token, clientSecret: { secret: s } }
routes:
  - name: token
    match: { pathPrefix: /token }
    upstream: ${upstreamUrl}
    stripPrefix: true
    auth: { connection: c }
  - name: none
    match: { pathPrefix: /none }
    upstream: ${upstreamUrl}
    stripPrefix: true
    auth: { type: none }
`);
  });

  after(async () => {
    await gw.stop();
    upstream.closeAllConnections();
    await new Promise<void>((done) => upstream.close(() => done()));
    await tokens.close();
  });

  for (const [route, authorization] of [
    ['token', 'Bearer tok-1'],
    ['none', undefined],
  ] as const) {
    it(`${route} route: each event reaches the caller before the upstream is told to send the next`, { timeout: 30_000 }, async () => {
      const caller = await subscribe(`${gw.url}/${route}/events`);
      const stream = await streams.next();
      assert.equal(caller.res.statusCode, 200);
      assert.equal(caller.res.headers['content-type'], 'text/event-stream');
      assert.equal(stream.authorization, authorization);
      for (let id = 1; id <= 3; id++) {
        stream.send(id, `event ${id}`);
        // The next event is sent only after this one has arrived: nothing here waits on a clock.
        assert.deepEqual(await caller.events.next(), { id: String(id), data: `event ${id}` });
      }
      caller.req.destroy();
      await stream.closed;
    });

    it(`${route} route: the upstream sees the caller go away`, { timeout: 30_000 }, async () => {
      const caller = await subscribe(`${gw.url}/${route}/events`);
      const stream = await streams.next();
      stream.send(1, 'only one');
      await caller.events.next();
      caller.req.destroy();
      // Without it, the upstream would go on writing to a stream nobody reads, until its own time-out.
      await stream.closed;
    });
  }
});
