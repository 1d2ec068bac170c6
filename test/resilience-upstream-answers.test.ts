/**
 * What a broken upstream sends never crashes the gateway or leaves a caller hanging. The
 * upstream is a raw TCP server so it can answer what no HTTP library would write.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startHeadServer } from './support/hostile.js';

interface RawUpstream {
  port: number;
  /** Each request's head as the upstream received it. */
  heads: string[];
  close(): Promise<void>;
}

/** Answers every request by calling `respond` with the socket, once the request head has arrived. */
async function startRawUpstream(respond: (socket: Socket) => void): Promise<RawUpstream> {
  const heads: string[] = [];
  const server = await startHeadServer((socket, head) => {
    heads.push(head.slice(0, head.indexOf('\r\n\r\n')));
    respond(socket);
  });
  return { port: server.port, heads, close: () => server.close() };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Whether the caller received the whole body (false when its connection was ended early). */
  complete: boolean;
}

/** One request with node:http (fetch would hide an early close); resolves when the response closes. */
function request(url: string, options: http.RequestOptions = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', () => undefined);
      res.once('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, complete: res.complete }));
    });
    req.on('error', reject);
    if (options.headers !== undefined && 'expect' in options.headers) req.once('continue', () => req.end(body));
    else req.end(body);
  });
}

function routesTo(upstreams: Record<string, RawUpstream>, extra = ''): string {
  return `
listen: { host: 127.0.0.1 }
routes:
${Object.entries(upstreams)
  .map(
    ([name, upstream]) => `  - name: ${name}
    match: { pathPrefix: /${name} }
    upstream: http://127.0.0.1:${upstream.port}
    auth: { type: none }
    timeouts: { responseMs: 300 }
${extra}`,
  )
  .join('')}`;
}

describe('hostile or broken upstream answers', () => {
  let gw: TestGateway;
  const upstreams: Record<string, RawUpstream> = {};

  before(async () => {
    upstreams.lowstatus = await startRawUpstream((s) => s.end('HTTP/1.1 099 Weird\r\nContent-Length: 2\r\n\r\nok'));
    upstreams.cut = await startRawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
      // Written and flushed before the reset, so the caller has the headers and the first bytes.
      setImmediate(() => s.destroy());
    });
    upstreams.chunkcut = await startRawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n');
      setImmediate(() => s.destroy());
    });
    upstreams.switching = await startRawUpstream((s) =>
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n'),
    );
    upstreams.silent = await startRawUpstream(() => undefined);
    upstreams.fine = await startRawUpstream((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
    gw = await startGateway(routesTo(upstreams));
  });

  after(async () => {
    await gw.stop();
    for (const upstream of Object.values(upstreams)) await upstream.close();
  });

  it(
    'answers an upstream status below 100 (which Node refuses to write) with 502 UPSTREAM_UNAVAILABLE, and keeps serving',
    { timeout: 10_000 },
    async () => {
      const answer = await request(`${gw.url}/lowstatus/x`);
      assert.equal(answer.status, 502);
      assert.equal(answer.headers['content-type'], 'application/problem+json');
      assert.equal((JSON.parse(answer.body) as { code: string }).code, 'UPSTREAM_UNAVAILABLE');
      assert.equal((await request(`${gw.url}/fine/x`)).status, 200);
    },
  );

  it(
    'ends the caller connection when the upstream closes mid-body (Content-Length), instead of leaving it hanging',
    { timeout: 10_000 },
    async () => {
      const answer = await request(`${gw.url}/cut/x`);
      assert.equal(answer.status, 200);
      assert.equal(answer.body, 'partial');
      assert.equal(answer.complete, false);
    },
  );

  it('ends the caller connection when the upstream closes mid-body (chunked)', { timeout: 10_000 }, async () => {
    const answer = await request(`${gw.url}/chunkcut/x`);
    assert.equal(answer.status, 200);
    assert.equal(answer.complete, false);
  });

  it(
    'answers an unasked 101 Switching Protocols with 502 UPSTREAM_UNAVAILABLE, instead of leaving the caller waiting',
    { timeout: 10_000 },
    async () => {
      const answer = await request(`${gw.url}/switching/x`);
      assert.equal(answer.status, 502);
      assert.equal((JSON.parse(answer.body) as { code: string }).code, 'UPSTREAM_UNAVAILABLE');
    },
  );

  it(
    'applies the route time-out to a request sent with Expect: 100-continue, and does not forward Expect',
    { timeout: 10_000 },
    async () => {
      const before = upstreams.silent!.heads.length;
      const answer = await request(
        `${gw.url}/silent/x`,
        { method: 'POST', headers: { expect: '100-continue', 'content-length': '2' } },
        'hi',
      );
      assert.equal(answer.status, 504);
      assert.equal((JSON.parse(answer.body) as { code: string }).code, 'UPSTREAM_TIMEOUT');
      const head = upstreams.silent!.heads[before]!;
      assert.doesNotMatch(head, /^expect:/im);
    },
  );
});
