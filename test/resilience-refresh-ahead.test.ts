/**
 * Refresh ahead observed: 3-second tokens from a token endpoint that takes 600 ms to answer, under
 * steady traffic for 10 s. After the first request no caller waits on a token request (the cache
 * never misses again; requests take a fraction of the endpoint's delay), and no expired token ever
 * reaches the upstream (it checks each token's issue time + lifetime itself).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { metricValue } from './support/faults.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { json, startServer, startTokenEndpoint, type TestServer } from './support/servers.js';

const LIFETIME_S = 3;
const ENDPOINT_DELAY_MS = 600;
const TRAFFIC_MS = 10_000;

describe('refresh ahead', () => {
  let endpoint: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;
  const expiredAtUpstream: string[] = [];

  before(async () => {
    // The token carries the time it was issued: the request's arrival, before the artificial delay.
    endpoint = await startTokenEndpoint((_req, res, _body, index) => {
      const issuedAt = Date.now();
      setTimeout(
        () => json(res, 200, { access_token: `tok-${index + 1}-${issuedAt}`, token_type: 'Bearer', expires_in: LIFETIME_S }),
        ENDPOINT_DELAY_MS,
      );
    });
    upstream = await startServer((req, res) => {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      const issuedAt = Number(token.split('-')[2]);
      if (!(Date.now() < issuedAt + LIFETIME_S * 1000)) expiredAtUpstream.push(token);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
secrets: { s: { value: secret-0123456789 } }
connections:
  short:
    clientId: short
    tokenUrl: ${endpoint.url}/token
    clientSecret: { secret: s }
  buffered:
    clientId: buffered
    tokenUrl: ${endpoint.url}/buffered
    clientSecret: { secret: s }
routes:
  - { name: short, match: { pathPrefix: /api }, upstream: ${upstream.url}, auth: { connection: short } }
  - { name: buffered, match: { pathPrefix: /upload }, upstream: ${upstream.url}, auth: { connection: buffered } }
`);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await endpoint.close();
  });

  it('renews 3-second tokens in the background: no caller waits after the first, no expired token upstream', async () => {
    const first = await fetch(`${gw.url}/api/warm`);
    assert.equal(first.status, 200);
    await first.text();
    const latencies: number[] = [];
    const started = Date.now();
    const loop = async () => {
      while (Date.now() - started < TRAFFIC_MS) {
        const t0 = performance.now();
        const response = await fetch(`${gw.url}/api/x`);
        await response.text();
        latencies.push(performance.now() - t0);
        assert.equal(response.status, 200);
        await delay(20);
      }
    };
    await Promise.all([loop(), loop(), loop(), loop()]);

    assert.deepEqual(expiredAtUpstream, [], 'expired tokens reached the upstream');
    // A cache miss is a caller waiting for the token endpoint: only the very first request. (The
    // exact measure: a single latency cannot tell a token wait from an event-loop stall of a
    // loaded machine, which delays all four callers in this process alike.)
    assert.equal(await metricValue(gw.admin, 'tokengate_token_cache_lookups_total', { connection: 'short', result: 'miss' }), 1);
    const median = latencies.sort((a, b) => a - b)[Math.floor(latencies.length / 2)]!;
    assert.ok(median < ENDPOINT_DELAY_MS / 4, `median latency ${median} ms`);
    const tokens = new Set(upstream.received.map((r) => r.headers.authorization));
    // 10 s of 3 s tokens: renewed several times, and not more than about once per usable lifetime.
    assert.ok(tokens.size >= 4, `only ${tokens.size} distinct tokens: no renewal`);
    assert.ok(endpoint.received.length <= 8, `${endpoint.received.length} token requests`);
    assert.ok(latencies.length > 200, `only ${latencies.length} requests of traffic`);
  });

  it("a request body buffered (for replay) past the token's lifetime is sent with a fresh token, not the expired one", async () => {
    const warm = await fetch(`${gw.url}/upload/warm`);
    assert.equal(warm.status, 200);
    const warmToken = upstream.received.at(-1)!.headers.authorization;
    const url = new URL(gw.url);
    const answer = new Promise<number>((done, fail) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: '/upload/slow', method: 'POST', headers: { 'content-length': '10' } },
        (res) => {
          res.resume();
          done(res.statusCode ?? 0);
        },
      );
      req.on('error', fail);
      req.write('12345');
      // The caller trickles the rest of its small body in after the token has expired.
      setTimeout(() => req.end('67890'), LIFETIME_S * 1000 + 200);
    });
    assert.equal(await answer, 200);
    const sent = upstream.received.at(-1)!;
    assert.equal(sent.url, '/upload/slow');
    assert.notEqual(sent.headers.authorization, warmToken);
    assert.deepEqual(expiredAtUpstream, [], 'an expired token reached the upstream');
  });
});
