/**
 * When tracing is on and where it exports: the YAML's `tracing` block over the OTEL_* variables,
 * as the OpenTelemetry environment-variable specification defines them.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { resolveTracing } from '../src/tracing/settings.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { json, startServer, type TestServer } from './support/servers.js';

describe('tracing settings', () => {
  it('is off by default', () => {
    assert.equal(resolveTracing(undefined, {}).settings, undefined);
    assert.equal(resolveTracing({}, {}).settings, undefined);
  });

  it('tracing.enabled: true turns it on with the defaults (localhost:4318, http/protobuf, ratio 1, tokengate)', () => {
    assert.deepEqual(resolveTracing({ enabled: true }, {}).settings, {
      url: 'http://localhost:4318/v1/traces',
      protocol: 'http/protobuf',
      sampleRatio: 1,
      serviceName: 'tokengate',
    });
  });

  it('OTEL_EXPORTER_OTLP_ENDPOINT turns it on and is a base URL: /v1/traces is appended', () => {
    assert.equal(
      resolveTracing(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).settings?.url,
      'http://collector:4318/v1/traces',
    );
    assert.equal(
      resolveTracing(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector/otlp' }).settings?.url,
      'http://collector/otlp/v1/traces',
    );
  });

  it('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT turns it on, is used as given and wins over the base URL', () => {
    const env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector/custom/path', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://other:4318' };
    assert.equal(resolveTracing(undefined, env).settings?.url, 'https://collector/custom/path');
  });

  it('tracing.enabled: false keeps it off whatever the environment says', () => {
    assert.equal(resolveTracing({ enabled: false }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).settings, undefined);
  });

  it('OTEL_SDK_DISABLED=true turns it off, even when the YAML enables it', () => {
    assert.equal(resolveTracing({ enabled: true }, { OTEL_SDK_DISABLED: 'true' }).settings, undefined);
    assert.equal(
      resolveTracing(undefined, { OTEL_SDK_DISABLED: 'TRUE', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).settings,
      undefined,
    );
    assert.notEqual(resolveTracing({ enabled: true }, { OTEL_SDK_DISABLED: 'false' }).settings, undefined);
  });

  it('YAML values win over the environment', () => {
    const settings = resolveTracing(
      { enabled: true, endpoint: 'http://yaml:4318', protocol: 'http/json', sampleRatio: 0.25, serviceName: 'from-yaml' },
      {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://env/v1/traces',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
        OTEL_SERVICE_NAME: 'from-env',
      },
    ).settings;
    assert.deepEqual(settings, { url: 'http://yaml:4318/v1/traces', protocol: 'http/json', sampleRatio: 0.25, serviceName: 'from-yaml' });
  });

  it('the environment fills what the YAML leaves out', () => {
    const settings = resolveTracing(
      { enabled: true },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'from-env' },
    ).settings;
    assert.deepEqual(settings, { url: 'http://env:4318/v1/traces', protocol: 'http/json', sampleRatio: 1, serviceName: 'from-env' });
    // The traces-specific protocol variable wins over the general one.
    const specific = resolveTracing(undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
    }).settings;
    assert.equal(specific?.protocol, 'http/protobuf');
  });

  it('an unsupported protocol (grpc) is a warning and http/protobuf is used', () => {
    const { settings, warnings } = resolveTracing(undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    assert.equal(settings?.protocol, 'http/protobuf');
    assert.match(warnings.join('\n'), /OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported/);
  });

  it('an endpoint variable that is not an http(s) URL is a warning and leaves tracing off', () => {
    const { settings, warnings } = resolveTracing(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' });
    assert.equal(settings, undefined);
    assert.match(warnings.join('\n'), /OTEL_EXPORTER_OTLP_ENDPOINT is not an http: or https: URL/);
  });

  it('empty variables count as unset', () => {
    assert.equal(
      resolveTracing(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ' ' }).settings,
      undefined,
    );
  });
});

describe('tracing off, and a reload that changes tracing', () => {
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    upstream = await startServer((_req, res) => json(res, 200, {}));
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
routes:
  - name: open
    match: { pathPrefix: /open }
    upstream: ${upstream.url}
    auth: { type: none }
`);
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  it("passes a caller's traceparent and tracestate to the upstream untouched while tracing is off", async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const response = await fetch(`${gw.url}/open/x`, { headers: { traceparent, tracestate: 'congo=t61rcWkgMzE' } });
    assert.equal(response.status, 200);
    assert.equal(upstream.received[0]!.headers.traceparent, traceparent);
    assert.equal(upstream.received[0]!.headers.tracestate, 'congo=t61rcWkgMzE');
  });

  it('a reload that turns tracing on says it takes effect on restart', async () => {
    writeFileSync(gw.configFile, `${readFileSync(gw.configFile, 'utf8')}\ntracing: { enabled: true }\n`);
    assert.equal((await gw.gateway.reload()).ok, true);
    const notice = gw.logs.find((line) => line.event === 'config_restart_required');
    assert.deepEqual(notice?.keys, ['tracing']);
  });
});
