/**
 * The upstream side: time-outs map to UPSTREAM_TIMEOUT, refusals to UPSTREAM_UNAVAILABLE, and a
 * caller who hangs up aborts the upstream request without leaking sockets or listeners
 * (http-proxy, which forwarded here before, leaked on aborted requests).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { metricValue } from './support/faults.js';
import { closedPort } from './support/observability.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startServer, startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';
import { waitFor } from './support/wait.js';

const ABORTED_REQUESTS = 1_000;
const BATCH = 100;

/** Polls `condition` until it holds or `ms` pass; returns whether it held. */
async function eventually(condition: () => boolean, ms = 5_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) return false;
    await delay(20);
  }
  return true;
}

function listenerTotal(emitter: NodeJS.EventEmitter): number {
  return emitter.eventNames().reduce((sum, name) => sum + emitter.listenerCount(name), 0);
}

describe('upstream time-outs, errors and client aborts', () => {
  let endpoint: TestServer;
  let slowEndpoint: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;
  /** Upstream sockets currently open, and requests that arrived (the slow upstream never answers). */
  const open = new Set<Socket>();
  let arrivals = 0;
  const held: http.ServerResponse[] = [];
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);

  before(async () => {
    process.on('warning', onWarning);
    endpoint = await startTokenEndpoint(tokenIssuer(300));
    slowEndpoint = await startTokenEndpoint((req, res, body, index) => setTimeout(() => tokenIssuer(300)(req, res, body, index), 300));
    upstream = await startServer((req, res) => {
      arrivals++;
      if (req.url?.endsWith('/trickle')) {
        // Headers at once, then the body in pieces with pauses longer than the route's responseMs.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.flushHeaders();
        let left = 3;
        const timer = setInterval(() => {
          res.write(`piece ${left}\n`);
          if (--left === 0) {
            clearInterval(timer);
            res.end();
          }
        }, 450);
        return;
      }
      if (req.url?.endsWith('/reset-mid-body')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
        res.write('the first part');
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (req.url?.startsWith('/fast')) {
        res.writeHead(200);
        return res.end('fast');
      }
      held.push(res);
    });
    upstream.server.on('connection', (socket: Socket) => {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
    });
    const refused = await closedPort();
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: secret-0123456789 } }
connections:
  c: { clientId: c, tokenUrl: ${endpoint.url}/token, clientSecret: { secret: s } }
  slow: { clientId: slow, tokenUrl: ${slowEndpoint.url}/token, clientSecret: { secret: s } }
routes:
  - name: slow-upstream
    match: { pathPrefix: /slow }
    upstream: ${upstream.url}
    auth: { connection: c }
  - name: fast
    match: { pathPrefix: /fast }
    upstream: ${upstream.url}
    auth: { connection: c }
  - name: timeout
    match: { pathPrefix: /timeout }
    upstream: ${upstream.url}
    auth: { connection: c }
    timeouts: { connectMs: 200, responseMs: 300 }
  - name: refused
    match: { pathPrefix: /refused }
    upstream: http://127.0.0.1:${refused}
    auth: { connection: c }
  - name: slow-token
    match: { pathPrefix: /slowtoken }
    upstream: ${upstream.url}
    auth: { connection: slow }
`);
  });

  after(async () => {
    process.off('warning', onWarning);
    for (const res of held) res.destroy();
    await gw.stop();
    await upstream.close();
    await endpoint.close();
    await slowEndpoint.close();
  });

  it('an upstream that does not answer within timeouts.responseMs: 504 UPSTREAM_TIMEOUT, counted as timeout', async () => {
    const started = Date.now();
    const response = await fetch(`${gw.url}/timeout/x`);
    assert.equal(response.status, 504);
    assert.equal(((await response.json()) as { code: string }).code, 'UPSTREAM_TIMEOUT');
    assert.ok(Date.now() - started < 3_000);
    assert.equal(await metricValue(gw.admin, 'tokengate_upstream_errors_total', { route: 'timeout', reason: 'timeout' }), 1);
  });

  it('timeouts.responseMs covers the wait for the response headers, not a slow body after them', async () => {
    const response = await fetch(`${gw.url}/timeout/trickle`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'piece 3\npiece 2\npiece 1\n');
  });

  it('an upstream that resets the connection in the middle of the body: the caller sees a cut answer, the gateway lives on', async () => {
    const response = await fetch(`${gw.url}/fast/reset-mid-body`, { headers: { 'x-request-id': 'cut-mid-body' } });
    assert.equal(response.status, 200);
    await assert.rejects(response.text());
    assert.equal((await fetch(`${gw.url}/fast/after-reset`)).status, 200);
    assert.equal(await metricValue(gw.admin, 'tokengate_upstream_errors_total', { route: 'fast', reason: 'reset' }), 1);
    // The cut answer is still logged and counted, with the status the caller was sent.
    const line = gw.logs.find((l) => l.event === 'access' && l.requestId === 'cut-mid-body');
    assert.equal(line?.status, 200);
  });

  it('a caller who hangs up before any answer is logged and counted with status 499', async () => {
    const before = await metricValue(gw.admin, 'tokengate_requests_total', { route: 'slow-upstream', method: 'GET', code: '499' });
    const url = new URL(gw.url);
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: '/slow/hangs-up',
      agent: false,
      headers: { 'x-request-id': 'hangs-up' },
    });
    req.on('error', () => undefined);
    const target = arrivals + 1;
    req.end();
    assert.ok(await eventually(() => arrivals >= target));
    req.destroy();
    assert.ok(
      await eventually(() => gw.logs.some((l) => l.event === 'access' && l.requestId === 'hangs-up')),
      'no access line for the abandoned request',
    );
    const line = gw.logs.find((l) => l.event === 'access' && l.requestId === 'hangs-up');
    assert.equal(line?.status, 499);
    assert.equal(line?.route, 'slow-upstream');
    assert.equal(
      await metricValue(gw.admin, 'tokengate_requests_total', { route: 'slow-upstream', method: 'GET', code: '499' }),
      before + 1,
    );
  });

  it('an upstream that refuses the connection: 502 UPSTREAM_UNAVAILABLE', async () => {
    const response = await fetch(`${gw.url}/refused/x`);
    assert.equal(response.status, 502);
    assert.equal(((await response.json()) as { code: string }).code, 'UPSTREAM_UNAVAILABLE');
    assert.equal(await metricValue(gw.admin, 'tokengate_upstream_errors_total', { route: 'refused', reason: 'unavailable' }), 1);
  });

  /**
   * Sends `count` requests, waits until all of them are on the wire and `arrived` holds (the upstream
   * has them, say), then hangs up on each.
   */
  async function sendAndAbort(path: string, count: number, arrived: () => boolean, method = 'GET', body?: Buffer): Promise<void> {
    const url = new URL(gw.url);
    let sent = 0;
    const onSent = () => sent++;
    const requests = Array.from({ length: count }, () => {
      const req = http.request({
        host: url.hostname,
        port: url.port,
        path,
        method,
        agent: false,
        headers: body === undefined ? {} : { 'content-length': String(body.length + 10) },
      });
      req.on('error', () => undefined);
      if (body !== undefined) req.write(body, onSent);
      else req.end(onSent);
      return req;
    });
    assert.ok(await eventually(() => sent === count && arrived()), 'the requests did not get where they should before the abort');
    for (const req of requests) req.destroy();
  }

  it(`${ABORTED_REQUESTS} callers hanging up on a slow upstream: upstream sockets are closed, no listeners pile up`, async () => {
    // Warm up: a token, and every lazily created listener, before counting.
    assert.equal((await fetch(`${gw.url}/fast/warm`)).status, 200);
    const processListeners = listenerTotal(process);
    for (let sent = 0; sent < ABORTED_REQUESTS; sent += BATCH) {
      const target = arrivals + BATCH;
      await sendAndAbort(`/slow/${sent}`, BATCH, () => arrivals >= target);
      // Every upstream request of the batch is aborted: its socket closes (a leak keeps it open).
      assert.ok(await eventually(() => open.size <= 2), `${open.size} upstream sockets still open after batch ${sent / BATCH + 1}`);
    }
    assert.equal(listenerTotal(process), processListeners);
    assert.deepEqual(
      warnings.map((w) => w.name).filter((n) => n === 'MaxListenersExceededWarning'),
      [],
    );
    // The gateway still works and its agent still has sockets to give.
    assert.equal((await fetch(`${gw.url}/fast/after`)).status, 200);
  });

  it('callers hanging up while their request waits for a free upstream socket: no socket stays open for it', async () => {
    // The route's agent has 512 sockets: the rest of the requests queue inside the agent and get
    // a socket as the aborted ones free theirs, possibly before the gateway saw their caller leave.
    const target = arrivals + 512;
    await sendAndAbort('/slow/queued', 600, () => arrivals >= target);
    assert.ok(await eventually(() => open.size <= 2), `${open.size} upstream sockets still open`);
    // Every one of them, queued ones included, has ended: none can open a socket any more.
    await waitFor(
      async () => (await metricValue(gw.admin, 'tokengate_upstream_requests_in_flight', { route: 'slow-upstream' })) === 0,
      'every abandoned upstream request to end',
    );
    assert.ok(await eventually(() => open.size <= 2), `${open.size} upstream sockets open for callers who had left`);
  });

  it('callers hanging up while the token is being fetched: nothing is sent upstream for them', async () => {
    await sendAndAbort('/slowtoken/x', 50, () => slowEndpoint.received.length >= 1);
    // Let the token arrive; the abandoned requests must not be forwarded with it.
    assert.ok(await eventually(() => gw.gateway.provider.expiries().has('slow')));
    // The fetch has settled (its waiters have gone on) and nothing is on its way to the upstream.
    await waitFor(
      async () =>
        (await metricValue(gw.admin, 'tokengate_token_fetches_in_flight', { connection: 'slow' })) === 0 &&
        (await metricValue(gw.admin, 'tokengate_upstream_requests_in_flight', { route: 'slow-token' })) === 0,
      'the token fetch and anything it let go on to end',
    );
    assert.equal(upstream.received.filter((r) => r.url.startsWith('/slowtoken')).length, 0);
    assert.equal(open.size <= 2, true);
  });

  it('callers hanging up in the middle of a small request body: nothing leaks, the gateway keeps serving', async () => {
    const processListeners = listenerTotal(process);
    const hungUp = { route: 'fast', method: 'POST', code: '499' };
    const before = await metricValue(gw.admin, 'tokengate_requests_total', hungUp);
    // Content-Length promises 10 more bytes than are sent: the body is still being buffered for replay.
    await sendAndAbort('/fast/partial', 100, () => true, 'POST', Buffer.from('partial'));
    // The gateway has seen every one of them hang up (each is counted 499 when it does).
    await waitFor(
      async () => (await metricValue(gw.admin, 'tokengate_requests_total', hungUp)) === before + 100,
      'all 100 to be counted 499',
    );
    assert.equal(upstream.received.filter((r) => r.url.startsWith('/fast/partial')).length, 0);
    assert.equal(listenerTotal(process), processListeners);
    assert.equal((await fetch(`${gw.url}/fast/still-ok`)).status, 200);
  });
});
