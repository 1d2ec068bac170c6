/** The access log level (logging.accessLog) and the logger's redaction of credentials by key name. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/log.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';
import { startGateway, type TestGateway } from './support/gateway.js';

describe('access log level', () => {
  let upstream: TestServer;
  const gateways: TestGateway[] = [];

  before(async () => {
    upstream = await startEchoUpstream();
  });

  after(async () => {
    for (const gw of gateways) await gw.stop();
    await upstream.close();
  });

  /** A gateway (its logger at debug) with one route, after one request to it. */
  async function accessLines(accessLog: string): Promise<Record<string, unknown>[]> {
    const gw = await startGateway(`
listen: { host: 127.0.0.1 }
logging: { accessLog: ${accessLog} }
routes:
  - name: open
    match: { pathPrefix: /open }
    upstream: ${upstream.url}
    auth: { type: none }
`);
    gateways.push(gw);
    const response = await fetch(`${gw.url}/open/x`, { headers: { 'x-request-id': `level-${accessLog}` } });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    return gw.logs.filter((l) => l.event === 'access');
  }

  it('writes the access line at debug when accessLog is debug', async () => {
    const lines = await accessLines('debug');
    assert.deepEqual(lines.map((l) => [l.level, l.route, l.status, l.upstreamStatus, l.requestId]), [[20, 'open', 200, 200, 'level-debug']]);
  });

  it('writes no access line when accessLog is off', async () => {
    assert.deepEqual(await accessLines('off'), []);
  });

  it('writes no access line when accessLog is below the logger level (trace under debug)', async () => {
    assert.deepEqual(await accessLines('trace'), []);
  });
});

describe('log redaction', () => {
  it('redacts authorization, cookie, client_secret, client_assertion and access_token wherever they appear', () => {
    let text = '';
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        text += chunk.toString('utf8');
        done();
      },
    });
    const log = createLogger({ level: 'info', destination, pretty: false });
    const values = ['V-authorization', 'V-cookie', 'V-client_secret', 'V-client_assertion', 'V-access_token', 'V-set-cookie', 'V-refresh'];
    log.info({
      authorization: values[0],
      headers: { cookie: values[1], 'set-cookie': values[5] },
      request: { body: { client_secret: values[2], client_assertion: values[3] } },
      response: { body: { access_token: values[4], refresh_token: values[6] } },
    });
    for (const value of values) assert.ok(!text.includes(value), `${value} was logged`);
    const line = JSON.parse(text) as { request: { body: Record<string, string> }; headers: Record<string, string> };
    assert.equal(line.request.body.client_secret, '[redacted]');
    assert.equal(line.headers.cookie, '[redacted]');
  });
});
