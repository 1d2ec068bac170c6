/**
 * TLS towards upstreams (a CA bundle per route, insecureSkipVerify and its warning), the HTTPS
 * proxy listener, and the TLS config rules (https: token URLs, CA bundles, key pairs).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';
import { requireProgram } from './support/programs.js';
import { testPki } from './support/tls.js';

const pki = testPki();
const openssl = requireProgram('openssl', 'openssl');

interface HttpsUpstream {
  url: string;
  received: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

async function startHttpsUpstream(): Promise<HttpsUpstream> {
  const received: http.IncomingHttpHeaders[] = [];
  const server = https.createServer({ cert: pki.server.cert, key: pki.server.key }, (req, res) => {
    received.push(req.headers);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('tls upstream');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

function problemCode(text: string): unknown {
  return (JSON.parse(text) as Record<string, unknown>).code;
}

/** GET over HTTPS trusting `ca` only. */
function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('TLS to upstreams', openssl, () => {
  let upstream: HttpsUpstream;
  let gw: TestGateway;
  const yaml = (upstreamUrl: string) => `
listen: { host: 127.0.0.1 }
secrets:
  upstream-ca: { file: ca.pem }
  other-ca: { file: other-ca.pem }
routes:
  - name: with-ca
    match: { pathPrefix: /with-ca }
    upstream: ${upstreamUrl}
    tls: { ca: upstream-ca }
    auth: { type: none }
  - name: system-roots
    match: { pathPrefix: /system-roots }
    upstream: ${upstreamUrl}
    auth: { type: none }
  - name: wrong-ca
    match: { pathPrefix: /wrong-ca }
    upstream: ${upstreamUrl}
    tls: { ca: other-ca }
    auth: { type: none }
  - name: insecure
    match: { pathPrefix: /insecure }
    upstream: ${upstreamUrl}
    tls: { insecureSkipVerify: true }
    auth: { type: none }
`;

  before(async () => {
    upstream = await startHttpsUpstream();
    gw = await startGateway(yaml(upstream.url), { files: { 'ca.pem': pki.ca.cert, 'other-ca.pem': pki.otherCa.cert } });
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  it('reaches an HTTPS upstream whose certificate the route CA signed', async () => {
    const response = await fetch(`${gw.url}/with-ca/x`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'tls upstream');
  });

  it('refuses the same upstream without the CA (UPSTREAM_UNAVAILABLE), even with a verified socket to it open', async () => {
    assert.equal((await fetch(`${gw.url}/with-ca/warm`)).status, 200);
    const before = upstream.received.length;
    const response = await fetch(`${gw.url}/system-roots/x`);
    assert.equal(response.status, 502);
    assert.equal(problemCode(await response.text()), 'UPSTREAM_UNAVAILABLE');
    assert.equal(upstream.received.length, before);
  });

  it('refuses the upstream when the route trusts a different CA', async () => {
    const response = await fetch(`${gw.url}/wrong-ca/x`);
    assert.equal(response.status, 502);
    assert.equal(problemCode(await response.text()), 'UPSTREAM_UNAVAILABLE');
  });

  it('insecureSkipVerify: true skips verification and is logged as a warning at start-up and on reload', async () => {
    assert.equal((await fetch(`${gw.url}/insecure/x`)).status, 200);
    const warnings = () => gw.logs.filter((l) => l.level === 40 && String(l.msg).includes('routes[3].tls.insecureSkipVerify is true'));
    assert.equal(warnings().length, 1);
    writeFileSync(gw.configFile, `${yaml(upstream.url)}\n# touched\n`);
    assert.equal((await gw.gateway.reload()).ok, true);
    assert.equal(warnings().length, 2);
  });
});

describe('HTTPS proxy listener', openssl, () => {
  let upstream: TestServer;
  let gw: TestGateway;

  before(async () => {
    upstream = await startEchoUpstream();
    gw = await startGateway(
      `
listen: { host: 127.0.0.1, tls: { certificate: listener-cert, key: listener-key } }
secrets:
  listener-cert: { file: server.crt }
  listener-key: { file: server.key }
routes:
  - name: echo
    match: { pathPrefix: /echo }
    upstream: ${upstream.url}
    auth: { type: none }
`,
      { files: { 'server.crt': pki.server.cert, 'server.key': pki.server.key } },
    );
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  it('serves HTTPS with the configured certificate and tells the upstream the caller used https', async () => {
    assert.match(gw.url, /^https:\/\//);
    const response = await httpsGet(`${gw.url}/echo/x`, pki.ca.cert);
    assert.equal(response.status, 200);
    assert.equal(upstream.received.at(-1)!.headers['x-forwarded-proto'], 'https');
  });

  /** The SHA-256 fingerprint of the certificate the listener presents now. */
  const fingerprint = () =>
    new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(gw.url).port), rejectUnauthorized: false }, () => {
        resolve(socket.getPeerX509Certificate()!.fingerprint256);
        socket.end();
      });
      socket.on('error', reject);
    });

  it('serves a rotated certificate to new connections after a reload', async () => {
    assert.equal(await fingerprint(), new X509Certificate(pki.server.cert).fingerprint256);
    writeFileSync(join(gw.dir, 'server.crt'), pki.selfSigned.cert);
    writeFileSync(join(gw.dir, 'server.key'), pki.selfSigned.key);
    assert.equal((await gw.gateway.reload()).ok, true);
    assert.equal(await fingerprint(), new X509Certificate(pki.selfSigned.cert).fingerprint256);
  });

  it('does not answer plain HTTP with a proxied response', async () => {
    const before = upstream.received.length;
    await fetch(gw.url.replace('https:', 'http:') + '/echo/x').then(
      (response) => assert.notEqual(response.status, 200),
      () => undefined,
    );
    assert.equal(upstream.received.length, before);
  });

  it('keeps serving HTTPS and says a restart is needed when a reload removes listen.tls', async () => {
    writeFileSync(
      gw.configFile,
      `listen: { host: 127.0.0.1 }\nroutes: [ { name: echo, match: { pathPrefix: /echo }, upstream: "${upstream.url}", auth: { type: none } } ]\n`,
    );
    assert.equal((await gw.gateway.reload()).ok, true);
    assert.ok(gw.logs.some((l) => l.event === 'config_restart_required' && (l.keys as string[]).includes('listen.tls')));
    assert.equal(await fingerprint(), new X509Certificate(pki.selfSigned.cert).fingerprint256);
  });
});

describe('TLS config rules', openssl, () => {
  const env = { TG_CA: pki.ca.cert, TG_CERT: pki.server.cert, TG_KEY: pki.server.key, TG_OTHER_KEY: pki.client.key };
  const secrets = `
secrets:
  ca: { env: TG_CA }
  cert: { env: TG_CERT }
  key: { env: TG_KEY }
  other-key: { env: TG_OTHER_KEY }
  junk: { value: not a certificate }
  s: { env: TG_CA }
`;
  const problems = async (text: string) => {
    try {
      await buildConfigTextOnly(secrets + text, 'gateway.yaml', { env });
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
  };
  const connection = (lines: string) => `
connections:
  c:
    clientId: x
    clientSecret: { secret: s }
${lines}`;
  const route = (lines: string) => `
routes:
  - name: r
    match: { pathPrefix: /r }
    auth: { type: none }
${lines}`;

  it('refuses an http: tokenUrl on a non-loopback host, naming the key path', async () => {
    assert.deepEqual(await problems(connection('    tokenUrl: http://auth.example/token')), [
      "connections.c.tokenUrl: must be https: (the client's credentials travel on it) unless the host is loopback or allowInsecureHttp: true is set",
    ]);
  });

  it('refuses an http: issuer too, and accepts loopback or an explicit allowInsecureHttp', async () => {
    assert.equal((await problems(connection('    issuer: http://auth.example'))).length, 1);
    assert.deepEqual(await problems(connection('    tokenUrl: http://127.0.0.1:8000/token')), []);
    assert.deepEqual(await problems(connection('    tokenUrl: http://auth.example/token\n    allowInsecureHttp: true')), []);
  });

  it('refuses a CA bundle that holds no certificate', async () => {
    assert.deepEqual(await problems(route('    upstream: https://api.example\n    tls: { ca: junk }')), [
      'routes[0].tls.ca: not a PEM CA bundle (no -----BEGIN CERTIFICATE----- block)',
    ]);
  });

  it('refuses tls settings for a plain-HTTP upstream or token endpoint', async () => {
    assert.deepEqual(await problems(route('    upstream: http://api.example\n    tls: { ca: ca }')), [
      'routes[0].tls: applies to an https: upstream only',
    ]);
    assert.deepEqual(await problems(connection('    tokenUrl: http://127.0.0.1/token\n    tls: { ca: ca }')), [
      'connections.c.tls: applies to an https: tokenUrl or issuer only',
    ]);
  });

  it('refuses a route client certificate without its key, or with a key of another certificate', async () => {
    assert.deepEqual(await problems(route('    upstream: https://api.example\n    tls: { certificate: cert }')), [
      'routes[0].tls: set both certificate and key, or neither',
    ]);
    assert.deepEqual(await problems(route('    upstream: https://api.example\n    tls: { certificate: cert, key: other-key }')), [
      'routes[0].tls.key: the key does not belong to the certificate',
    ]);
    assert.deepEqual(await problems(route('    upstream: https://api.example\n    tls: { certificate: cert, key: key, ca: ca }')), []);
  });

  it('refuses a CA bundle next to insecureSkipVerify: true', async () => {
    assert.deepEqual(await problems(route('    upstream: https://api.example\n    tls: { ca: ca, insecureSkipVerify: true }')), [
      'routes[0].tls.ca: a CA bundle has no effect with insecureSkipVerify: true; remove one of them',
    ]);
  });

  it('records insecureSkipVerify as a warning with its key path', async () => {
    const config = await buildConfigTextOnly(
      secrets + connection('    tokenUrl: https://auth.example/token\n    tls: { insecureSkipVerify: true }'),
      'gateway.yaml',
      { env },
    );
    assert.ok(config.warnings.some((w) => w.includes('connections.c.tls.insecureSkipVerify is true')));
  });

  it('refuses a listener key that does not belong to its certificate', async () => {
    assert.deepEqual(await problems('listen: { tls: { certificate: cert, key: other-key } }'), [
      'listen.tls.key: the key does not belong to the certificate',
    ]);
  });

  it('refuses a headers time-out longer than the request time-out (Node would not start)', async () => {
    assert.deepEqual(await problems('listen: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 }'), [
      'listen.headersTimeoutMs: must not exceed requestTimeoutMs (1000)',
    ]);
  });
});
