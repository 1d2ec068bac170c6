/**
 * Hot reload of a running `node dist/cli.js serve`: on a config file change and on SIGHUP. Valid
 * configs are swapped in without a restart, keeping the tokens of unchanged connections; invalid
 * ones are refused, logged problem by problem and counted, and the old config keeps serving.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { ServeProcess } from './support/processes.js';
import { startEchoUpstream, startServer, type TestServer } from './support/servers.js';

const SECRET = 'reload-secret-0123456789abcdef';

interface Shape {
  routes: Array<{ name: string; prefix: string; connection?: string }>;
  /** Connection key → its scope param. */
  connections: Record<string, string>;
}

describe('hot reload', () => {
  let oidc: OidcServer;
  let upstream: TestServer;
  let serve: ServeProcess | undefined;
  const env = { ...process.env, TG_RELOAD_SECRET: SECRET };

  const yaml = (shape: Shape, secret = 'reload') => `
listen: { host: 127.0.0.1, port: 0 }
admin: { port: 0 }
secrets:
  reload: { env: TG_RELOAD_SECRET }
  from-file: { file: client.secret }
connections:
${Object.entries(shape.connections)
  .map(
    ([key, scope]) =>
      `  ${key}:\n    clientId: reload-client\n    tokenUrl: ${oidc.tokenUrl}\n    clientSecret: { secret: ${secret} }\n    params: { scope: ${scope} }`,
  )
  .join('\n')}
routes:
${shape.routes
  .map(
    (r) =>
      `  - name: ${r.name}\n    match: { pathPrefix: ${r.prefix} }\n    upstream: ${upstream.url}\n    auth: ${r.connection === undefined ? '{ type: none }' : `{ connection: ${r.connection} }`}`,
  )
  .join('\n')}
`;

  /** Writes the file the way editors and ConfigMaps do: a new file renamed over the old one. */
  const replace = (file: string, text: string) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };

  const folder = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokengate-reload-'));
    writeFileSync(join(dir, 'client.secret'), `${SECRET}\n`);
    return dir;
  };

  /** The bearer token the upstream saw for a GET of `path`. */
  const tokenFor = async (path: string): Promise<string> => {
    const response = await fetch(`${serve!.proxy}${path}`);
    assert.equal(response.status, 200, await response.text());
    return upstream.received.at(-1)!.headers.authorization!;
  };

  const reloads = async (outcome: 'success' | 'failure'): Promise<number> => {
    const text = await (await fetch(`${serve!.admin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`tokengate_config_reloads_total{outcome="${outcome}"}`));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };

  const reloaded = (count: number) => serve!.waitForLog(() => serve!.events('config_reloaded').length >= count);

  before(async () => {
    oidc = await startOidcProvider([{ client_id: 'reload-client', client_secret: SECRET }]);
    upstream = await startEchoUpstream();
  });

  afterEach(async () => {
    await serve?.kill();
    serve = undefined;
  });

  after(async () => {
    await upstream.close();
    await oidc.close();
  });

  it('adds a route when the config file changes, without a restart', async () => {
    const file = join(folder(), 'gateway.yaml');
    const shape: Shape = { connections: { orders: 'orders.read' }, routes: [{ name: 'a', prefix: '/a', connection: 'orders' }] };
    writeFileSync(file, yaml(shape));
    serve = await ServeProcess.start(file, env);
    const token = await tokenFor('/a/1');
    assert.equal((await fetch(`${serve.proxy}/b/1`)).status, 404);

    replace(file, yaml({ ...shape, routes: [...shape.routes, { name: 'b', prefix: '/b' }] }));
    await reloaded(1);
    assert.equal((await fetch(`${serve.proxy}/b/1`)).status, 200);
    assert.equal(await tokenFor('/a/2'), token, 'the unchanged connection kept its token');
    assert.equal(serve.child.exitCode, null);
    assert.equal(await reloads('success'), 1);

    // An in-place write (truncate, then write) is one reload too: change events are debounced.
    writeFileSync(file, yaml({ ...shape, routes: [...shape.routes, { name: 'b', prefix: '/b' }, { name: 'c', prefix: '/c' }] }));
    await reloaded(2);
    assert.equal((await fetch(`${serve.proxy}/c/1`)).status, 200);
    assert.equal(await reloads('failure'), 0);
  });

  it('reloads on SIGHUP, also when the file changed where no watcher sees it (behind a symlink)', async () => {
    const real = join(folder(), 'real.yaml');
    const link = join(folder(), 'gateway.yaml');
    const shape: Shape = { connections: { orders: 'orders.read' }, routes: [{ name: 'a', prefix: '/a', connection: 'orders' }] };
    writeFileSync(real, yaml(shape));
    symlinkSync(real, link);
    serve = await ServeProcess.start(link, env);
    replace(real, yaml({ ...shape, routes: [...shape.routes, { name: 'b', prefix: '/b', connection: 'orders' }] }));
    assert.equal((await fetch(`${serve.proxy}/b/1`)).status, 404, 'reloaded before the signal');

    serve.child.kill('SIGHUP');
    await reloaded(1);
    assert.equal((await fetch(`${serve.proxy}/b/1`)).status, 200);
    assert.equal(serve.child.exitCode, null);
  });

  it('keeps serving the old config after an invalid edit, logs every problem and counts the failure', async () => {
    const file = join(folder(), 'gateway.yaml');
    const shape: Shape = { connections: { orders: 'orders.read' }, routes: [{ name: 'a', prefix: '/a', connection: 'orders' }] };
    writeFileSync(file, yaml(shape));
    serve = await ServeProcess.start(file, env);
    const token = await tokenFor('/a/1');

    const broken = yaml({
      ...shape,
      routes: [
        { name: 'a', prefix: '/a', connection: 'ordres' },
        { name: 'b', prefix: 'no-slash' },
      ],
    }).replace('admin:', 'bogus: 1\nadmin:');
    replace(file, broken);
    await serve.waitForLog(() => serve!.events('config_reload_problem').length >= 3);
    const problems = serve
      .events('config_reload_problem')
      .map((line) => line.path)
      .sort();
    assert.deepEqual(problems, ['bogus', 'routes[0].auth.connection', 'routes[1].match.pathPrefix']);
    const messages = serve.events('config_reload_problem').map((line) => String(line.msg));
    assert.ok(
      messages.some((m) => /gateway\.yaml:\d+:\d+: bogus: unknown key$/.test(m)),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => /gateway\.yaml:\d+:\d+: routes\[1\]\.match\.pathPrefix: must start with \/$/.test(m)),
      messages.join('\n'),
    );

    assert.equal(await tokenFor('/a/2'), token, 'the old config and its token keep serving');
    assert.equal((await fetch(`${serve.proxy}/b/1`)).status, 404);
    assert.equal(await reloads('failure'), 1);
    assert.equal(await reloads('success'), 0);
    assert.ok(!serve.output().includes(SECRET));

    // A partial fix is picked up like any edit; the reference problem is still reported.
    replace(file, yaml({ ...shape, routes: [{ name: 'a', prefix: '/a', connection: 'ordres' }] }));
    await serve.waitForLog(
      () => serve!.events('config_reload_problem').filter((line) => line.path === 'routes[0].auth.connection').length >= 2,
    );
    assert.equal(await reloads('failure'), 2);
    replace(file, yaml({ ...shape, routes: [...shape.routes, { name: 'b', prefix: '/b' }] }));
    await reloaded(1);
    assert.equal((await fetch(`${serve.proxy}/b/1`)).status, 200);
  });

  it('lets a request in flight finish on the config it started with', async () => {
    let arrived: () => void = () => {};
    const upstreamHasIt = new Promise<void>((done) => (arrived = done));
    let release: () => void = () => {};
    const slow = await startServer((_req, res) => {
      release = () => res.end('old route, complete');
      arrived();
    });
    try {
      const file = join(folder(), 'gateway.yaml');
      const shape: Shape = { connections: { orders: 'orders.read' }, routes: [{ name: 'a', prefix: '/a', connection: 'orders' }] };
      writeFileSync(file, yaml(shape).replace(`upstream: ${upstream.url}`, `upstream: ${slow.url}`));
      serve = await ServeProcess.start(file, env);
      const response = fetch(`${serve.proxy}/a/slow`);
      await upstreamHasIt;

      replace(file, yaml({ ...shape, routes: [{ name: 'b', prefix: '/b' }] }));
      await reloaded(1);
      assert.equal((await fetch(`${serve.proxy}/a/next`)).status, 404, 'the old route still matches new requests');
      release();
      const answer = await response;
      assert.equal(answer.status, 200);
      assert.equal(await answer.text(), 'old route, complete');
      assert.match(String(slow.received[0]!.headers.authorization), /^Bearer /);
    } finally {
      await slow.close();
    }
  });

  it('warns that a changed listener setting waits for a restart, and applies the rest', async () => {
    const file = join(folder(), 'gateway.yaml');
    const shape: Shape = { connections: { orders: 'orders.read' }, routes: [{ name: 'a', prefix: '/a' }] };
    writeFileSync(file, yaml(shape));
    serve = await ServeProcess.start(file, env);
    replace(
      file,
      yaml({ ...shape, routes: [...shape.routes, { name: 'b', prefix: '/b' }] }).replace('port: 0 }', 'port: 0, maxHeaderBytes: 4096 }'),
    );
    await reloaded(1);
    const warning = serve.events('config_restart_required')[0]!;
    assert.deepEqual(warning.keys, ['listen.maxHeaderBytes']);
    assert.equal((await fetch(`${serve.proxy}/b/1`)).status, 200);
  });

  it('gives a changed connection a new token and keeps the unchanged one', async () => {
    const file = join(folder(), 'gateway.yaml');
    const shape: Shape = {
      connections: { stays: 'orders.read', changes: 'orders.read' },
      routes: [
        { name: 'stays', prefix: '/stays', connection: 'stays' },
        { name: 'changes', prefix: '/changes', connection: 'changes' },
      ],
    };
    writeFileSync(file, yaml(shape));
    serve = await ServeProcess.start(file, env);
    const kept = await tokenFor('/stays/1');
    const old = await tokenFor('/changes/1');
    const requests = oidc.tokenRequests;

    replace(file, yaml({ ...shape, connections: { stays: 'orders.read', changes: 'orders.read orders.write' } }));
    await reloaded(1);
    assert.equal(await tokenFor('/stays/2'), kept);
    assert.equal(oidc.tokenRequests, requests, 'the unchanged connection asked for a token');
    const fresh = await tokenFor('/changes/2');
    assert.notEqual(fresh, old);
    assert.equal(oidc.tokenRequests, requests + 1);
    assert.equal((await oidc.introspect(fresh.replace(/^Bearer /, ''))).scope, 'orders.read orders.write');
  });

  it('follows a rotated secret file without SIGHUP: the cached token stays, the next token request uses the new secret', async () => {
    const dir = folder();
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      yaml({ connections: { orders: 'orders.read' }, routes: [{ name: 'a', prefix: '/a', connection: 'orders' }] }, 'from-file'),
    );
    serve = await ServeProcess.start(file, env);
    const token = await tokenFor('/a/1');

    // The server does not know the new secret: the next token request is refused, which shows it carried the new one.
    writeFileSync(join(dir, 'client.secret'), 'rotated-secret-that-the-server-refuses\n');
    await serve.waitForLog(() => serve!.events('secret_reloaded').length >= 1);
    assert.equal(await tokenFor('/a/2'), token, 'a token obtained with the old secret stays valid until it expires');
    const test = await fetch(`${serve.admin}/connections/orders/test`, { method: 'POST' });
    const summary = (await test.json()) as Record<string, unknown>;
    assert.equal(summary.code, 'TOKEN_REJECTED');
    assert.equal(summary.oauthError, 'invalid_client');
  });
});
