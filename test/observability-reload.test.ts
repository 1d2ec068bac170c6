/**
 * Metric series across a hot reload: the series of routes and connections the new config no
 * longer has are dropped from /metrics; those it keeps go on counting from where they were.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';
import { waitFor } from './support/wait.js';

describe('metric series across a reload', () => {
  let upstream: TestServer;
  let gw: TestGateway;

  const yaml = (routes: string[], connections: string[]) => `
listen: { host: 127.0.0.1 }
secrets: { s: { value: reload-metrics-secret } }
connections:
${connections.map((key) => `  ${key}: { clientId: ${key}-client, tokenUrl: "http://127.0.0.1:9/token", clientSecret: { secret: s } }`).join('\n')}
routes:
${routes.map((name) => `  - { name: ${name}, match: { pathPrefix: /${name} }, upstream: "${upstream.url}", auth: { type: none } }`).join('\n')}
`;
  const exposition = async () => (await fetch(`${gw.admin}/metrics`)).text();
  const series = (text: string, label: string) => text.split('\n').filter((line) => !line.startsWith('#') && line.includes(label));

  before(async () => {
    upstream = await startEchoUpstream();
    gw = await startGateway(yaml(['kept', 'gone'], ['kept-conn', 'gone-conn']));
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it("drops a removed route's and connection's series and keeps the rest", async () => {
    for (const path of ['/kept/x', '/gone/x']) assert.equal((await fetch(`${gw.url}${path}`)).status, 200);
    const before = await exposition();
    assert.ok(series(before, 'route="gone"').length > 0, 'the route has series before the reload');
    assert.ok(series(before, 'connection="gone-conn"').length > 0, 'the connection has series before the reload');

    writeFileSync(gw.configFile, yaml(['kept'], ['kept-conn']));
    assert.equal((await gw.gateway.reload()).ok, true);
    let after = await exposition();
    // The series are dropped just after the reload returns (prom-client reads them asynchronously).
    await waitFor(async () => series((after = await exposition()), 'route="gone"').length === 0, "the removed route's series to go");
    assert.deepEqual(series(after, 'route="gone"'), []);
    assert.deepEqual(series(after, 'connection="gone-conn"'), []);
    assert.ok(
      series(after, 'tokengate_requests_total{route="kept",method="GET",code="200"} 1').length === 1,
      'the kept route keeps its count',
    );
    assert.ok(series(after, 'connection="kept-conn"').length > 0);
  });
});
