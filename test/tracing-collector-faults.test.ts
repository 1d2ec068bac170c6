/**
 * A collector that refuses connections or never answers changes no answer: spans are exported in
 * batches off the request path, each export has a time-out, and the failures are counted
 * (tokengate_trace_export_failures_total) and logged once per outage, not once per batch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metricValue, timed } from './support/faults.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startCollector, type Collector } from './support/otlp-collector.js';
import { freePort, json, startServer, startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';

const REQUESTS = 20;
/** Generous on a loaded 2-core machine: the point is "not held up by the collector's 5 s export time-out". */
const ANSWER_BOUND_MS = 2_500;

function config(tokenUrl: string, upstream: string): string {
  return `
listen: { host: 127.0.0.1 }
secrets: { s: { value: faults-secret-0123456789 } }
connections:
  c: { clientId: faults, tokenUrl: ${tokenUrl}, clientSecret: { secret: s } }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: ${upstream}
    auth: { connection: c }
`;
}

/** Sends REQUESTS requests one after the other; every answer must be the upstream's 200, each within the bound. */
async function sendTraffic(gw: TestGateway, label: string): Promise<void> {
  for (let i = 0; i < REQUESTS; i++) {
    const { value, ms } = await timed(async () => {
      const response = await fetch(`${gw.url}/api/item/${i}?q=${i}`);
      return { status: response.status, body: (await response.json()) as { url: string } };
    });
    assert.deepEqual(value, { status: 200, body: { url: `/api/item/${i}?q=${i}` } }, `${label}: request ${i}`);
    assert.ok(ms < ANSWER_BOUND_MS, `${label}: request ${i} took ${Math.round(ms)} ms`);
  }
}

/** Polls the admin listener until the export failure counter reaches `count` (an export is at most 1 s + 5 s away). */
async function exportFailures(gw: TestGateway, count: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await metricValue(gw.admin, 'tokengate_trace_export_failures_total', {});
    if (value >= count || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('tracing: a collector that refuses connections', () => {
  let tokens: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    upstream = await startServer((req, res) => json(res, 200, { url: req.url }));
    const refused = `http://127.0.0.1:${await freePort()}`;
    gw = await startGateway(config(tokens.url, upstream.url), { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: refused } });
  });

  after(async () => {
    await gw.stop();
    await Promise.all([tokens.close(), upstream.close()]);
  });

  it('answers every request as without tracing, counts the failed exports and logs the outage once', async () => {
    await sendTraffic(gw, 'first batch');
    assert.ok((await exportFailures(gw, 1)) >= 1);
    await sendTraffic(gw, 'second batch');
    assert.ok((await exportFailures(gw, 2)) >= 2);
    const outages = gw.logs.filter((line) => line.event === 'trace_export_failed');
    assert.equal(outages.length, 1);
    assert.equal(outages[0]!.level, 40);
  });
});

describe('tracing: a collector that never answers', () => {
  let tokens: TestServer;
  let upstream: TestServer;
  let collector: Collector;
  let gw: TestGateway;

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    upstream = await startServer((req, res) => json(res, 200, { url: req.url }));
    collector = await startCollector({ mode: 'hang' });
    gw = await startGateway(config(tokens.url, upstream.url), { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: collector.url } });
  });

  after(async () => {
    await gw.stop();
    await Promise.all([tokens.close(), upstream.close(), collector.close()]);
  });

  it('answers every request as without tracing while exports hang, and still shuts down in bounded time', async () => {
    await sendTraffic(gw, 'while the first export hangs');
    // An export is under way and hanging: traffic goes on regardless.
    while (collector.requests === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    await sendTraffic(gw, 'with an export hanging');
    // The hung export times out (5 s) and counts as a failure.
    assert.ok((await exportFailures(gw, 1)) >= 1);
    const { ms } = await timed(() => gw.stop());
    assert.ok(ms < 12_000, `stop took ${Math.round(ms)} ms`);
  });
});

describe('tracing: a collector that recovers', () => {
  let tokens: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;
  let collector: Collector | undefined;

  before(async () => {
    tokens = await startTokenEndpoint(tokenIssuer());
    upstream = await startServer((req, res) => json(res, 200, { url: req.url }));
  });

  after(async () => {
    await gw.stop();
    await Promise.all([tokens.close(), upstream.close(), collector?.close()]);
  });

  it('logs the end of the outage once the collector answers again', async () => {
    // Reserve a port, start with nothing listening on it, then start the collector there.
    const port = await freePort();
    gw = await startGateway(config(tokens.url, upstream.url), {
      env: { ...process.env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces` },
    });
    await sendTraffic(gw, 'collector down');
    await exportFailures(gw, 1);
    collector = await startCollector({ port });
    await sendTraffic(gw, 'collector back');
    await collector.waitFor((spans) => spans.length > 0);
    const deadline = Date.now() + 10_000;
    while (!gw.logs.some((line) => line.event === 'trace_export_recovered') && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const events = gw.logs.map((line) => line.event).filter((event) => typeof event === 'string' && event.startsWith('trace_export_'));
    assert.deepEqual(events, ['trace_export_failed', 'trace_export_recovered']);
  });
});
