/** The access log level (logging.accessLog) and the logger's redaction of credentials by key name. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { AccessLog, createLogger } from '../src/observability/log.js';
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
    assert.deepEqual(
      lines.map((l) => [l.level, l.route, l.status, l.upstreamStatus, l.requestId]),
      [[20, 'open', 200, 200, 'level-debug']],
    );
  });

  it('writes no access line when accessLog is off', async () => {
    assert.deepEqual(await accessLines('off'), []);
  });

  it('writes no access line when accessLog is below the logger level (trace under debug)', async () => {
    assert.deepEqual(await accessLines('trace'), []);
  });
  it("redacts a route's custom access.header in every log line once the config names it", async () => {
    const gw = await startGateway(
      `
listen: { host: 127.0.0.1 }
secrets:
  team-key: { value: V-team-key-0123456789 }
routes:
  - name: guarded
    match: { pathPrefix: /guarded }
    upstream: ${upstream.url}
    auth: { type: none }
    access: { header: X-Team-Key, apiKeys: [{ secret: team-key }] }
`,
    );
    gateways.push(gw);
    // A header map logged by mistake, the way a debugging change might.
    gw.gateway.log.warn({ event: 'test_headers', headers: { 'X-Team-Key': 'V-team-key-0123456789', accept: 'text/plain' } }, 'headers');
    const line = gw.logs.find((l) => l.event === 'test_headers') as { headers: Record<string, string> } | undefined;
    assert.deepEqual(line?.headers, { 'X-Team-Key': '[redacted]', accept: 'text/plain' });
    assert.equal(JSON.stringify(gw.logs).includes('V-team-key-0123456789'), false);
  });
});

/** A logger whose lines are kept in memory. */
function capture(level = 'info'): { log: ReturnType<typeof createLogger>; lines: () => Record<string, any>[]; text: () => string } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  return {
    log: createLogger({ level, destination, pretty: false }),
    lines: () =>
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, any>),
    text: () => text,
  };
}

describe('log redaction', () => {
  it('redacts authorization, cookie, client_secret, client_assertion and access_token wherever they appear', () => {
    const { log, lines, text } = capture();
    const values = [
      'V-authorization',
      'V-cookie',
      'V-client_secret',
      'V-client_assertion',
      'V-access_token',
      'V-set-cookie',
      'V-refresh',
      'V-upper',
      'V-array',
    ];
    log.info({
      authorization: values[0],
      headers: { cookie: values[1], 'set-cookie': [values[5]], Authorization: values[7] },
      request: { body: { client_secret: values[2], client_assertion: values[3] } },
      response: { body: { access_token: values[4], refresh_token: values[6] } },
      tokens: [{ access_token: values[8] }],
    });
    for (const value of values) assert.ok(!text().includes(value), `${value} was logged`);
    const [line] = lines();
    assert.equal(line!.request.body.client_secret, '[redacted]');
    assert.equal(line!.headers.cookie, '[redacted]');
    assert.deepEqual(line!.tokens, [{ access_token: '[redacted]' }]);
  });

  it('redacts a DPoP proof header (RFC 9449) in headers logged from a request', () => {
    const { log, lines, text } = capture();
    const proof = 'eyJ0eXAiOiJkcG9wK2p3dCJ9.proof-claims.proof-signature';
    log.info({ headers: { DPoP: proof, accept: 'application/json' } });
    assert.ok(!text().includes(proof), 'the DPoP proof was logged');
    assert.deepEqual(lines()[0]!.headers, { DPoP: '[redacted]', accept: 'application/json' });
  });

  it('keeps the rest of the line, the logged objects untouched, and survives frozen objects, errors and cycles', () => {
    const { log, lines, text } = capture();
    const frozen = Object.freeze({ client_secret: 'V-frozen', keep: 1 });
    const error = Object.assign(new Error('token endpoint said no'), { code: 'E_TEST', headers: { authorization: 'V-error' } });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    log.info({ frozen, err: error, cyclic, route: 'orders' }, 'message kept');
    assert.ok(!text().includes('V-frozen') && !text().includes('V-error'));
    const [line] = lines();
    assert.equal(line!.msg, 'message kept');
    assert.equal(line!.route, 'orders');
    assert.deepEqual(line!.frozen, { client_secret: '[redacted]', keep: 1 });
    assert.equal(line!.err.message, 'token endpoint said no');
    assert.equal(line!.err.code, 'E_TEST');
    assert.equal(line!.err.type, 'Error');
    assert.equal(line!.err.headers.authorization, '[redacted]');
    assert.equal(frozen.client_secret, 'V-frozen', "the caller's object is not changed");
    assert.equal(error.headers.authorization, 'V-error');
  });
});

describe('access lines', () => {
  /** The line with its time replaced, so that two lines written a millisecond apart compare. */
  const timeless = (line: string) => line.replace(/"time":\d+/, '"time":0');

  it('are written byte for byte as pino writes the same fields, at each level, with and without an upstream status', () => {
    const { log, text } = capture('trace');
    // A route name that needs escaping, and a request id that would if it ever got this far.
    const route = 'team "a"\\b';
    const access = new AccessLog(log, route);
    const viaPino = log.child({ event: 'access', route });
    const cases = [
      ['info', 'GET', 200, 1.234, 'req-1', 200],
      ['debug', 'POST', 502, 0.5, 'quote"and\\slash', undefined],
      ['trace', 'DELETE', 404, 12, 'e3b0c442-98fc-4c1c-a1b2-0123456789ab', 404],
      // Durations as the gateway rounds them (to the microsecond): no trailing zeros, as JavaScript writes them.
      ['info', 'GET', 200, 1.2, 'a.b:c@d/e+f=g_h', 200],
      ['info', 'PUT', 201, 10.05, 'req-2', 201],
      ['info', 'GET', 200, 0.001, 'req-3', 200],
      ['info', 'GET', 200, 1234.5, 'req-4', 200],
      ['info', 'GET', 200, 0, 'req-5', 200],
      ['info', 'GET', 200, 98765.432, 'caf\u00e9', 200],
    ] as const;
    for (const [level, method, status, durationMs, requestId, upstreamStatus] of cases) {
      access.write(level, method, status, durationMs, requestId, upstreamStatus);
      viaPino[level]({ method, status, durationMs, requestId, upstreamStatus }, 'request');
    }
    const lines = text().trimEnd().split('\n').map(timeless);
    assert.equal(lines.length, cases.length * 2);
    for (let i = 0; i < lines.length; i += 2) assert.equal(lines[i], lines[i + 1]);
    assert.equal(JSON.parse(lines[2]!).requestId, 'quote"and\\slash');
  });

  it('are not written below the logger level', () => {
    const { log, text } = capture('info');
    new AccessLog(log, 'r').write('debug', 'GET', 200, 1, 'id', 200);
    assert.equal(text(), '');
  });
});
