/**
 * The admin plane tried as an attacker would: a foreign Host (DNS rebinding), reads without a
 * session, forged cookies, a session turning itself into the admin key, secrets pasted into the
 * file, an authorization server quoting the secret in every spelling, deep and odd JSON, a hand
 * edit racing a console save, a FIFO at the config path, and values another save would rewrite.
 * docs/security.md names the test that holds each threat.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parseDocument } from 'yaml';
import { createAdminApp } from '../src/admin/app.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { startGateway, writeConfig, type TestGateway } from './support/gateway.js';
import { ServeProcess } from './support/processes.js';
import { requireProgram } from './support/programs.js';
import { json, startServer, startTokenEndpoint, tokenIssuer, type TestServer } from './support/servers.js';
import { testPki } from './support/tls.js';

const ADMIN_KEY = 'admin-key-0123456789abcdef';
const CLIENT_SECRET = 'client-secret-0123456789abcdef';
const bearer = { authorization: `Bearer ${ADMIN_KEY}` };
const env = { ...process.env, TG_ADMIN_KEY: ADMIN_KEY, TG_CLIENT_SECRET: CLIENT_SECRET };

function config(tokenUrl: string, { auth = true, extra = '', hosts = false } = {}): string {
  return `admin:
${auth ? '  auth: { apiKeys: [ { secret: admin-key } ] }\n  console: { edit: true }\n' : ''}${hosts ? '  allowedHosts: [ TokenGate-Admin.Internal ]\n' : ''}  port: 0
secrets:
  admin-key: { env: TG_ADMIN_KEY }
  client-secret: { env: TG_CLIENT_SECRET }
connections:
  orders:
    clientId: orders-client
    tokenUrl: ${tokenUrl}
    clientSecret: { secret: client-secret }
routes:
  - name: orders-api
    match: { pathPrefix: /orders }
    upstream: http://127.0.0.1:9
    auth: { connection: orders }
${extra}`;
}

interface Answer {
  status: number;
  type: string;
  text: string;
  json: Record<string, any>;
  headers: http.IncomingHttpHeaders;
}

/** A request with any headers (fetch will not send a chosen Host) over http or https. */
function request(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
  ca?: string,
): Promise<Answer> {
  const url = new URL(path, base);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((done, fail) => {
    const length = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    const req = client.request(url, { method, headers: { ...length, ...headers }, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, any> = {};
        try {
          parsed = JSON.parse(text) as Record<string, any>;
        } catch {
          // Not JSON (the page, metrics).
        }
        done({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', text, json: parsed, headers: res.headers });
      });
    });
    req.on('error', fail);
    req.end(body);
  });
}

const sendJson = (gw: TestGateway, method: string, path: string, body: unknown, headers: Record<string, string> = bearer) =>
  request(gw.admin, method, path, { 'content-type': 'application/json', ...headers }, JSON.stringify(body));

const versionOf = async (gw: TestGateway): Promise<string> =>
  String((await request(gw.admin, 'GET', '/console/state', bearer)).json.version);

describe('admin plane: DNS rebinding', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config('http://127.0.0.1:9/token'), { env });
  });
  after(() => gw.stop());

  it('refuses a foreign Host with 403 ADMIN_FORBIDDEN on every path, with a key too, before anything is read', async () => {
    for (const host of [
      'rebind.attacker.example',
      'rebind.attacker.example:9090',
      '127.0.0.1.nip.io',
      'localhost.attacker.example',
      'a b',
    ]) {
      for (const path of ['/routes', '/connections/orders', '/connections', '/usage', '/metrics', '/healthz', '/console/state', '/']) {
        const answer = await request(gw.admin, 'GET', path, { host, ...bearer });
        assert.equal(answer.status, 403, `${host} ${path}`);
        assert.equal(answer.json.code, 'ADMIN_FORBIDDEN');
        assert.ok(!answer.text.includes('orders-client'), 'nothing of the config in the answer');
      }
    }
  });
});

describe('admin plane: admin.allowedHosts', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config('http://127.0.0.1:9/token', { hosts: true }), { env });
  });
  after(() => gw.stop());

  it('answers localhost, IP literals and the names in admin.allowedHosts (any case, a trailing dot)', async () => {
    const port = new URL(gw.admin).port;
    for (const host of [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      'tokengate-admin.internal',
      'TOKENGATE-ADMIN.INTERNAL.:443',
      '10.1.2.3',
    ]) {
      assert.equal((await request(gw.admin, 'GET', '/healthz', { host })).status, 200, host);
      assert.equal((await request(gw.admin, 'GET', '/routes', { host, ...bearer })).status, 200, host);
    }
  });

  it('refuses an allowedHosts entry that is not a host name as a config problem at its key path', async () => {
    await assert.rejects(
      buildConfigTextOnly(
        config('http://127.0.0.1:9/token', { hosts: true }).replace('[ TokenGate-Admin.Internal ]', '[ "admin.internal:9090" ]'),
        'a.yaml',
        {
          env,
        },
      ),
      (error: Error & { problems?: { path: string }[] }) => error.problems?.some((p) => p.path === 'admin.allowedHosts[0]') === true,
    );
  });
});

describe('admin plane: reads need a session or a key when admin.auth is set', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config('http://127.0.0.1:9/token'), { env });
  });
  after(() => gw.stop());

  it('answers 401 ADMIN_AUTH_REQUIRED to every read of config or usage without one (also with forged cookies)', async () => {
    const forged = [
      'tokengate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      'tokengate_session=',
      'tokengate_session=../../x; tokengate_session=1',
    ];
    for (const path of [
      '/routes',
      '/connections',
      '/connections/orders',
      '/usage',
      '/usage/history',
      '/CONNECTIONS',
      '/routes/',
      '/connections/orders/',
    ]) {
      for (const cookie of [undefined, ...forged]) {
        const answer = await request(gw.admin, 'GET', path, cookie === undefined ? {} : { cookie });
        assert.equal(answer.status, 401, `${path} ${cookie}`);
        assert.equal(answer.json.code, 'ADMIN_AUTH_REQUIRED');
      }
    }
    assert.equal((await request(gw.admin, 'POST', '/connections/orders/test')).status, 401);
  });

  it('keeps /metrics, /healthz, /readyz and the console page open; /console/state says only that sign-in is needed', async () => {
    for (const path of ['/metrics', '/healthz', '/readyz', '/']) assert.equal((await request(gw.admin, 'GET', path)).status, 200, path);
    const state = await request(gw.admin, 'GET', '/console/state');
    // Only that sign-in is needed, and how (a key field, a single sign-on button): nothing of the config.
    assert.deepEqual(state.json, { authRequired: true, signedIn: false, signInWith: { key: true, sso: false } });
    assert.ok((await request(gw.admin, 'GET', '/console/state', bearer)).json.version !== undefined);
    for (const path of ['/routes', '/connections/orders', '/usage'])
      assert.equal((await request(gw.admin, 'GET', path, bearer)).status, 200, path);
  });

  it('accepts the session cookie only under its own name: a valid id under __Host- over HTTP is no session', async () => {
    const signIn = await request(
      gw.admin,
      'POST',
      '/session',
      { 'content-type': 'application/json', origin: gw.admin, 'sec-fetch-site': 'same-origin' },
      JSON.stringify({ key: ADMIN_KEY }),
    );
    const cookie = String(signIn.headers['set-cookie']?.[0] ?? '');
    assert.match(cookie, /^tokengate_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const id = cookie.split(';')[0]!.split('=')[1]!;
    assert.equal((await request(gw.admin, 'GET', '/routes', { cookie: `tokengate_session=${id}` })).status, 200);
    assert.equal((await request(gw.admin, 'GET', '/routes', { cookie: `__Host-tokengate_session=${id}` })).status, 401);
  });
});

describe('admin plane without admin.auth', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config('http://127.0.0.1:9/token', { auth: false }), { env });
  });
  after(() => gw.stop());

  it('keeps reads open and changes nothing: 403 ADMIN_FORBIDDEN for every changing call', async () => {
    for (const path of ['/routes', '/connections/orders', '/connections', '/usage', '/console/state'])
      assert.equal((await request(gw.admin, 'GET', path)).status, 200, path);
    const file = readFileSync(gw.configFile);
    const version = (await request(gw.admin, 'GET', '/console/state')).json.version as string;
    for (const [method, path] of [
      ['PUT', '/connections/new'],
      ['PUT', '/routes/orders-api/auth'],
      ['DELETE', `/connections/orders?version=${version}`],
    ] as const) {
      const answer = await sendJson(gw, method, path, { clientId: 'x', version }, {});
      assert.equal(answer.status, 403, `${method} ${path}: ${answer.text}`);
      assert.equal(answer.json.code, 'ADMIN_FORBIDDEN');
    }
    assert.deepEqual(readFileSync(gw.configFile), file);
  });
});

describe('admin plane: the session cookie over HTTPS', requireProgram('openssl', 'openssl'), () => {
  let gw: TestGateway;
  let server: https.Server;
  let base: string;
  const pki = testPki();
  before(async () => {
    gw = await startGateway(config('http://127.0.0.1:9/token'), { env });
    const g = gw.gateway;
    const app = createAdminApp({
      metrics: g.metrics,
      usage: g.usage,
      provider: g.provider,
      config: () => g.config,
      ready: () => true,
      log: g.log,
      configFile: gw.configFile,
      env,
      reload: () => g.reload(),
    });
    server = https.createServer({ cert: pki.server.cert, key: pki.server.key }, app);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
    await gw.stop();
  });

  it('is __Host-tokengate_session, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain; the HTTP name is not read', async () => {
    const signIn = await request(
      base,
      'POST',
      '/session',
      { 'content-type': 'application/json', origin: base, 'sec-fetch-site': 'same-origin' },
      JSON.stringify({ key: ADMIN_KEY }),
      pki.ca.cert,
    );
    assert.equal(signIn.status, 204);
    const cookie = String(signIn.headers['set-cookie']?.[0] ?? '');
    assert.match(cookie, /^__Host-tokengate_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    const id = cookie.split(';')[0]!.slice('__Host-tokengate_session='.length);
    assert.equal((await request(base, 'GET', '/routes', { cookie: `__Host-tokengate_session=${id}` }, undefined, pki.ca.cert)).status, 200);
    // A cookie without the prefix can be planted by a plain-HTTP page or a sibling domain.
    assert.equal((await request(base, 'GET', '/routes', { cookie: `tokengate_session=${id}` }, undefined, pki.ca.cert)).status, 401);
  });
});

describe('admin plane: admin and access keys are never connection credentials', () => {
  let gw: TestGateway;
  let attacker: TestServer;
  before(async () => {
    attacker = await startTokenEndpoint(tokenIssuer());
    gw = await startGateway(
      config('http://127.0.0.1:9/token', {
        extra: 'access: { apiKeys: [ { secret: team-key } ] }\n',
      }).replace('secrets:\n', 'secrets:\n  team-key: { value: team-key-0123456789abcdef }\n  same-as-admin: { env: TG_ADMIN_KEY }\n'),
      { env },
    );
  });
  after(async () => {
    await gw.stop();
    await attacker.close();
  });

  it('refuses a session turning itself into the admin key: 422 CONFIG_INVALID, and Test never sends it', async () => {
    for (const secret of ['admin-key', 'same-as-admin', 'team-key']) {
      const file = readFileSync(gw.configFile);
      const answer = await sendJson(gw, 'PUT', '/connections/exfiltrate', {
        clientId: 'attacker',
        tokenUrl: `${attacker.url}/token`,
        clientSecret: { secret, method: 'client_secret_post' },
        version: await versionOf(gw),
      });
      assert.equal(answer.status, 422, `${secret}: ${answer.text}`);
      assert.equal(answer.json.code, 'CONFIG_INVALID');
      assert.deepEqual(
        (answer.json.problems as { path: string }[]).map((p) => p.path),
        ['connections.exfiltrate.clientSecret.secret'],
      );
      assert.deepEqual(readFileSync(gw.configFile), file);
      assert.equal((await request(gw.admin, 'POST', '/connections/exfiltrate/test', bearer)).status, 404);
    }
    assert.equal(attacker.received.length, 0);
  });

  it('is a config problem for validate and load, naming the key path and never the value', async () => {
    const yaml = config('http://127.0.0.1:9/token').replace(
      'clientSecret: { secret: client-secret }',
      'clientSecret: { secret: admin-key }',
    );
    await assert.rejects(
      buildConfigTextOnly(yaml, 'a.yaml', { env }),
      (error: Error & { problems?: { path: string; message: string }[] }) => {
        const problem = error.problems?.find((p) => p.path === 'connections.orders.clientSecret.secret');
        assert.match(problem?.message ?? '', /admin\.auth\.apiKeys\[0\]/);
        assert.ok(!JSON.stringify(error.problems).includes(ADMIN_KEY));
        return true;
      },
    );
  });
});

describe('admin plane: secrets pasted into the file are masked', () => {
  let gw: TestGateway;
  const pasted = {
    name: 'pasted-as-a-name-0123456789',
    userinfo: 'pasted-in-userinfo-0123456789',
    clientSecret: 'pasted-client-secret-param-0123',
    assertion: 'pasted-assertion-param-0123456',
    password: 'pasted-password-param-01234567',
    upstream: 'pasted-upstream-password-0123456',
  };
  before(async () => {
    gw = await startGateway(config('http://127.0.0.1:9/token'), { env });
  });
  after(() => gw.stop());

  const paste = (gw: TestGateway) => {
    const text = readFileSync(gw.configFile, 'utf8')
      .replace(
        'connections:\n',
        `connections:
  pasted:
    clientId: pasted-client
    tokenUrl: https://pasted-client:${pasted.userinfo}@auth.example/token?client_secret=${pasted.clientSecret}
    clientSecret: { secret: ${pasted.name} }
    params: { client_assertion: ${pasted.assertion}, password: ${pasted.password}, scope: read }
`,
      )
      .replace('upstream: http://127.0.0.1:9', `upstream: https://user:${pasted.upstream}@api.example`)
      .replace(
        'auth: { connection: orders }',
        `auth: { connection: orders, params: { client_secret: ${pasted.clientSecret}, Password: ${pasted.password} } }`,
      );
    writeFileSync(gw.configFile, text);
  };

  it('GET /connections/KEY, GET /routes and the reload log show *** where each was pasted, never the value', async () => {
    paste(gw);
    const reload = await gw.gateway.reload();
    assert.equal(reload.ok, false, 'the pasted file does not load');
    const connection = await request(gw.admin, 'GET', '/connections/pasted', bearer);
    assert.equal(connection.status, 200, connection.text);
    assert.deepEqual(connection.json.connection, {
      clientId: 'pasted-client',
      tokenUrl: 'https://***@auth.example/token?client_secret=***',
      clientSecret: { secret: '***' },
      params: { client_assertion: '***', password: '***', scope: 'read' },
    });
    const routes = await request(gw.admin, 'GET', '/routes', bearer);
    assert.equal(routes.json.routes[0].upstream, 'https://***@api.example');
    assert.deepEqual(routes.json.routes[0].auth.params, { client_secret: '***', Password: '***' });
    const everything = [connection.text, routes.text, (await request(gw.admin, 'GET', '/connections', bearer)).text, gw.logText()].join(
      '\n',
    );
    for (const value of Object.values(pasted)) assert.ok(!everything.includes(value), value);
    assert.ok(
      gw.logs.some((line) => line.event === 'config_reload_problem' && line.path === 'connections.pasted.params.client_assertion'),
      'the reload problem is logged, without the value',
    );
  });

  it('a form sent back with *** keeps the value the file has (never writes ***)', async () => {
    const original = readFileSync(gw.configFile, 'utf8');
    try {
      // A loadable file with a password param: the edit must not replace it with ***.
      writeFileSync(
        gw.configFile,
        config('http://127.0.0.1:9/token').replace(
          'clientSecret: { secret: client-secret }',
          `clientSecret: { secret: client-secret }\n    params: { password: ${pasted.password} }`,
        ),
      );
      assert.equal((await gw.gateway.reload()).ok, true);
      const shown = await request(gw.admin, 'GET', '/connections/orders', bearer);
      assert.equal(shown.json.connection.params.password, '***');
      const answer = await sendJson(gw, 'PUT', '/connections/orders', {
        ...(shown.json.connection as object),
        displayName: 'Orders',
        version: String(shown.json.version),
      });
      assert.equal(answer.status, 200, answer.text);
      const text = readFileSync(gw.configFile, 'utf8');
      assert.ok(text.includes(`password: ${pasted.password}`) && !text.includes('***'), text);
    } finally {
      writeFileSync(gw.configFile, original);
    }
  });
});

describe('admin plane: an authorization server quoting the secret in every spelling', () => {
  const SECRET = 'p@ss w+rd/é:0123456789';
  const ID = 'quoting client';
  let gw: TestGateway;
  let quoting: TestServer;
  const spellings = (): string[] => {
    const form = (text: string) => new URLSearchParams({ s: text }).toString().slice(2);
    const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
    return [SECRET, encodeURIComponent(SECRET), form(SECRET), b64(`${ID}:${SECRET}`), b64(`${form(ID)}:${form(SECRET)}`)];
  };
  before(async () => {
    quoting = await startServer((req, res) =>
      json(res, 400, {
        error: 'invalid_client',
        error_description: `bad client: ${spellings().join(' | ')} (header ${req.headers.authorization ?? ''})`,
      }),
    );
    const secretEnv = { ...env, TG_CLIENT_SECRET: SECRET };
    gw = await startGateway(config(`${quoting.url}/token`).replace('clientId: orders-client', `clientId: "${ID}"`), { env: secretEnv });
  });
  after(async () => {
    await gw.stop();
    await quoting.close();
  });

  it('reaches neither the caller’s answer, /usage, the Test answer nor the logs', async () => {
    const caller = await fetch(`${gw.url}/orders/x`);
    const callerText = await caller.text();
    assert.ok(caller.status >= 500, callerText);
    assert.match(callerText, /invalid_client/);
    const test = await request(gw.admin, 'POST', '/connections/orders/test', bearer);
    assert.equal(test.status, 502);
    assert.match(test.json.detail as string, /\[redacted\]/);
    const usage = await request(gw.admin, 'GET', '/usage', bearer);
    const everything = [callerText, test.text, usage.text, gw.logText()].join('\n');
    for (const spelling of spellings()) assert.ok(!everything.includes(spelling), spelling);
  });
});

describe('admin plane: admin JSON bodies', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config('http://127.0.0.1:9/token'), { env });
  });
  after(() => gw.stop());

  const put = (path: string, text: string) => request(gw.admin, 'PUT', path, { 'content-type': 'application/json', ...bearer }, text);

  it('answers 413 to a body over 1 MiB and 400 BAD_REQUEST to nesting deeper than 32 (20,000 deep too), never 500', async () => {
    const big = await put('/connections/big', JSON.stringify({ clientId: 'x'.repeat(1024 * 1024) }));
    assert.equal(big.status, 413);
    assert.match(big.type, /^application\/problem\+json/);
    assert.equal(big.json.code, 'BODY_TOO_LARGE');
    // 50 kB of gzip that inflates to 50 MiB: the limit counts what is parsed, not what was sent.
    const bomb = gzipSync(JSON.stringify({ clientId: 'x'.repeat(50 * 1024 * 1024) }));
    const inflated = await request(
      gw.admin,
      'PUT',
      '/connections/big',
      { 'content-type': 'application/json', 'content-encoding': 'gzip', ...bearer },
      bomb,
    );
    assert.equal(inflated.status, 413);
    for (const depth of [33, 20_000]) {
      const deep = await put('/connections/deep', `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
      assert.equal(deep.status, 400, `${depth}: ${deep.text}`);
      assert.equal(deep.json.code, 'BAD_REQUEST');
      const deepArray = await put('/connections/deep', `${'['.repeat(depth)}${']'.repeat(depth)}`);
      assert.equal(deepArray.status, 400);
    }
    const version = await versionOf(gw);
    const atLimit = await put(
      '/connections/deep',
      JSON.stringify({ clientId: 'x', version, params: JSON.parse(`${'{"a":'.repeat(30)}1${'}'.repeat(30)}`) as unknown }),
    );
    assert.notEqual(atLimit.status, 400, '32 levels are accepted by the parser (the config then refuses the params)');
    assert.equal((await request(gw.admin, 'GET', '/healthz')).status, 200);
  });

  it('refuses __proto__, constructor and prototype keys anywhere with 422 CONFIG_INVALID; the file is unchanged', async () => {
    const file = readFileSync(gw.configFile);
    const version = await versionOf(gw);
    for (const [path, text, where] of [
      [
        '/connections/orders',
        `{"version":"${version}","__proto__":{"clientId":"x"},"clientId":"orders-client"}`,
        'connections.orders... __proto__',
      ],
      ['/connections/orders', `{"version":"${version}","clientId":"c","params":{"constructor":"x"}}`, 'params.constructor'],
      ['/routes/orders-api/auth', `{"version":"${version}","connection":"orders","params":{"prototype":"x"}}`, 'params.prototype'],
    ] as const) {
      const answer = await put(path, text);
      assert.equal(answer.status, 422, `${where}: ${answer.text}`);
      assert.equal(answer.json.code, 'CONFIG_INVALID');
    }
    assert.deepEqual(readFileSync(gw.configFile), file);
  });

  it('refuses the connection names __proto__, constructor and prototype (PUT and DELETE), and in the file', async () => {
    const file = readFileSync(gw.configFile);
    for (const name of ['__proto__', 'constructor', 'prototype']) {
      const answer = await sendJson(gw, 'PUT', `/connections/${name}`, {
        clientId: 'x',
        tokenUrl: 'http://127.0.0.1:9/token',
        clientSecret: { secret: 'client-secret' },
        version: await versionOf(gw),
      });
      assert.equal(answer.status, 422, `${name}: ${answer.text}`);
      assert.deepEqual(answer.json.problems, [
        { path: `connections.${name}`, message: '__proto__, constructor, prototype cannot be used as a key' },
      ]);
      assert.equal((await request(gw.admin, 'DELETE', `/connections/${name}?version=${await versionOf(gw)}`, bearer)).status, 422);
    }
    assert.deepEqual(readFileSync(gw.configFile), file);
    const yaml = config('http://127.0.0.1:9/token').replace(
      'connections:\n',
      'connections:\n  __proto__: { clientId: x, tokenUrl: "http://127.0.0.1:9/t", clientSecret: { secret: client-secret } }\n',
    );
    await assert.rejects(
      buildConfigTextOnly(yaml, 'a.yaml', { env }),
      (error: Error & { problems?: { path: string }[] }) => error.problems?.some((p) => p.path === 'connections.__proto__') === true,
    );
  });
});

describe('admin plane: a hand edit during a console save', () => {
  let gw: TestGateway;
  let handEdit: (() => void) | undefined;
  before(async () => {
    // The candidate's validation reads TG_HAND_EDIT (a secret from the environment): the test makes
    // its hand edit at exactly that moment, between the editor's version check and its write.
    const hooked = new Proxy(
      { ...env, TG_HAND_EDIT: 'unused-0123456789' },
      {
        get(target, name, receiver) {
          if (name === 'TG_HAND_EDIT' && handEdit !== undefined) {
            const edit = handEdit;
            handEdit = undefined;
            edit();
          }
          return Reflect.get(target, name, receiver) as unknown;
        },
      },
    );
    gw = await startGateway(config('http://127.0.0.1:9/token').replace('secrets:\n', 'secrets:\n  hook: { env: TG_HAND_EDIT }\n'), {
      env: hooked,
    });
  });
  after(() => gw.stop());

  for (const how of ['in place', 'by rename (as editors save)']) {
    it(`is never overwritten (${how}): 409 CONFIG_CHANGED and the file is the hand edit`, async () => {
      const version = await versionOf(gw);
      let edited = '';
      handEdit = () => {
        edited = readFileSync(gw.configFile, 'utf8').replace('pathPrefix: /orders', `pathPrefix: /orders-${how.length}`);
        if (how === 'in place') writeFileSync(gw.configFile, edited);
        else {
          writeFileSync(`${gw.configFile}.swp`, edited);
          renameSync(`${gw.configFile}.swp`, gw.configFile);
        }
      };
      const answer = await sendJson(gw, 'PUT', '/routes/orders-api/auth', { type: 'none', version });
      assert.equal(handEdit, undefined, 'the hand edit happened during the save');
      assert.equal(answer.status, 409, answer.text);
      assert.equal(answer.json.code, 'CONFIG_CHANGED');
      assert.equal(readFileSync(gw.configFile, 'utf8'), edited);
    });
  }
});

describe('admin plane: a FIFO at the config path', () => {
  let serve: ServeProcess | undefined;
  after(() => serve?.kill());

  it('freezes neither listener: the admin read is refused as CONFIG_INVALID, /healthz and the proxy answer', async () => {
    const upstream = await startServer((_req, res) => json(res, 200, { ok: true }));
    try {
      const { configFile } = writeConfig(
        config('http://127.0.0.1:9/token', { auth: false })
          .replace('admin:\n', `listen: { port: 0 }\nadmin:\n`)
          .replace(
            '  - name: orders-api',
            `  - name: open\n    match: { pathPrefix: /open }\n    upstream: ${upstream.url}\n    auth: { type: none }\n  - name: orders-api`,
          ),
      );
      serve = await ServeProcess.start(configFile, env);
      unlinkSync(configFile);
      execFileSync('mkfifo', [configFile]);
      const signal = () => AbortSignal.timeout(10_000);
      const routes = await fetch(`${serve.admin}/routes`, { signal: signal() });
      assert.equal(routes.status, 422);
      assert.match(((await routes.json()) as { detail: string }).detail, /FIFO/);
      assert.equal((await fetch(`${serve.admin}/healthz`, { signal: signal() })).status, 200);
      assert.equal((await fetch(`${serve.proxy}/open/x`, { signal: signal() })).status, 200);
    } finally {
      await upstream.close();
    }
  });
});

describe('admin plane: values are stored exactly as accepted', () => {
  let gw: TestGateway;
  // A block scalar whose lines look like a key and its comment, and a real key with that comment
  // at the same indentation: printing the document must not join the value's lines.
  const extra = `  - name: legacy-api
    match: { pathPrefix: /legacy }
    upstream: http://127.0.0.1:9
    auth:
      connection: legacy
      params: # scopes are granted by the partner's support desk
        scope: read
`;
  const legacy = `  legacy:
    displayName: |
      Legacy partner
      params:
      # scopes are granted by the partner's support desk
    clientId: legacy-client # the old client
    tokenUrl: http://127.0.0.1:9/token
    clientSecret: { secret: client-secret }
`;
  before(async () => {
    gw = await startGateway(config('http://127.0.0.1:9/token', { extra }).replace('connections:\n', `connections:\n${legacy}`), { env });
  });
  after(() => gw.stop());

  it('saving one connection leaves an earlier multi-line value of another exactly as it was', async () => {
    const original = readFileSync(gw.configFile, 'utf8');
    const valueOf = (text: string) =>
      (parseDocument(text).toJS() as { connections: { legacy: { displayName: string } } }).connections.legacy.displayName;
    const answer = await sendJson(gw, 'PUT', '/connections/orders', {
      displayName: 'Orders',
      clientId: 'orders-client',
      tokenUrl: 'http://127.0.0.1:9/token',
      clientSecret: { secret: 'client-secret' },
      version: await versionOf(gw),
    });
    assert.equal(answer.status, 200, answer.text);
    const saved = readFileSync(gw.configFile, 'utf8');
    assert.equal(valueOf(saved), valueOf(original));
    assert.equal(valueOf(saved), "Legacy partner\nparams:\n# scopes are granted by the partner's support desk\n");
    assert.ok(
      saved.includes("      params: # scopes are granted by the partner's support desk\n        scope: read"),
      'the real key keeps its comment',
    );
    assert.ok(saved.includes('clientId: legacy-client # the old client'));
  });
});
