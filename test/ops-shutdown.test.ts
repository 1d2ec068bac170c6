/**
 * Graceful shutdown of a spawned `node dist/cli.js serve`: on SIGTERM/SIGINT /readyz turns 503,
 * new connections are refused, in-flight requests finish (up to listen.drainTimeoutMs), exit 0.
 */
import assert from 'node:assert/strict';
import http, { type ServerResponse } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import { writeConfig } from './support/gateway.js';
import { ServeProcess } from './support/processes.js';
import { startServer, type TestServer } from './support/servers.js';

const BODY = 'the slow answer, complete';

/** A GET on a connection of its own (no keep-alive pool), resolving with status and body or the socket error. */
function get(url: string): Promise<{ status: number; body: string } | { error: NodeJS.ErrnoException }> {
  return new Promise((done) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => done({ status: res.statusCode!, body }));
        res.on('error', (error) => done({ error }));
      })
      .on('error', (error) => done({ error }));
  });
}

describe('graceful shutdown', () => {
  let upstream: TestServer;
  let serve: ServeProcess | undefined;
  /** Responses the slow upstream holds until the test releases them. */
  const held: ServerResponse[] = [];
  let arrived: () => void = () => {};

  before(async () => {
    upstream = await startServer((_req, res) => {
      held.push(res);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(BODY.slice(0, 8)); // headers and a first chunk now, the rest on release
      arrived();
    });
  });

  afterEach(async () => {
    await serve?.kill();
    serve = undefined;
  });

  after(() => upstream.close());

  const start = async (drainTimeoutMs?: number) => {
    const { configFile } = writeConfig(`
listen: { host: 127.0.0.1, port: 0${drainTimeoutMs === undefined ? '' : `, drainTimeoutMs: ${drainTimeoutMs}`} }
admin: { port: 0 }
routes:
  - name: slow
    match: { pathPrefix: /slow }
    upstream: ${upstream.url}
    auth: { type: none }
`);
    serve = await ServeProcess.start(configFile);
    return serve;
  };

  /** Sends a request and resolves, once the upstream holds it, with the pending response. */
  const inFlight = async (gateway: ServeProcess) => {
    const upstreamHasIt = new Promise<void>((done) => (arrived = done));
    const response = get(`${gateway.proxy}/slow/1`);
    await upstreamHasIt;
    return { response };
  };

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} during a slow upstream response: the response completes, /readyz is 503 meanwhile, exit 0`, async () => {
      const gateway = await start();
      assert.equal((await fetch(`${gateway.admin}/readyz`)).status, 200);
      const { response } = await inFlight(gateway);

      gateway.child.kill(signal);
      await gateway.waitForLog((line) => line.event === 'draining');
      const readyz = await fetch(`${gateway.admin}/readyz`);
      assert.equal(readyz.status, 503);
      assert.deepEqual(await readyz.json(), { status: 'draining' });
      const refused = await get(`${gateway.proxy}/slow/2`);
      assert.equal('error' in refused && refused.error.code, 'ECONNREFUSED', 'a new connection was accepted while draining');
      assert.equal(gateway.child.exitCode, null, 'exited before the in-flight request finished');

      held.shift()!.end(BODY.slice(8));
      assert.deepEqual(await response, { status: 200, body: BODY });
      assert.deepEqual(await gateway.exited, { code: 0, signal: null });
      assert.equal(gateway.events('stopped').length, 1);
    });
  }

  it('cuts a request still running at listen.drainTimeoutMs and still exits 0', async () => {
    const gateway = await start(300);
    const { response } = await inFlight(gateway);
    gateway.child.kill('SIGTERM');
    const outcome = await response;
    assert.ok('error' in outcome || outcome.body !== BODY, 'the request outlived the drain deadline');
    assert.deepEqual(await gateway.exited, { code: 0, signal: null });
    held.shift()!.destroy();
  });

  it('exits at once when only idle keep-alive connections are open', async () => {
    const gateway = await start();
    const agent = new http.Agent({ keepAlive: true });
    const idle = await new Promise<number>((done) =>
      http.get(`${gateway.admin}/healthz`, { agent }, (res) => res.resume().on('end', () => done(res.statusCode!))),
    );
    assert.equal(idle, 200);
    // A keep-alive connection to the proxy as well: it must not hold the drain open.
    const proxied = await fetch(`${gateway.proxy}/nowhere`);
    assert.equal(proxied.status, 404);
    gateway.child.kill('SIGTERM');
    // Under the default 25 s drain deadline: the test time-out would catch a drain that waits for idle sockets.
    assert.deepEqual(await gateway.exited, { code: 0, signal: null });
    agent.destroy();
  });
});
