/**
 * One pipeline from text to a running config: values `validate` used to accept and the runtime
 * could not build are refused at their key path by validate, at start (exit 1, no stack trace) and
 * on reload (refused, the old config keeps serving, the process lives). Files are read only when
 * they are regular files; the watcher survives its folder being deleted and recreated.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigText } from '../src/runtime/build.js';
import { startLiveGateway, type LiveGateway } from './support/live-config.js';
import { runCli, ServeProcess } from './support/processes.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';

type Data = Record<string, unknown>;

/** Each value the issue lists, where it goes in the base config, and the key path it must be refused at. */
const REFUSED: Array<{ what: string; apply: (config: Data) => void; path: string; message: RegExp }> = [
  ...['zz:zz/64', 'gggg::/16', '::1::/64', '1:2:3:4:5:6:7:8:9/64'].map((cidr) => ({
    what: `allowFrom ${cidr}`,
    apply: (config: Data) => ((config.access as Data).allowFrom = ['127.0.0.0/8', cidr]),
    path: 'access.allowFrom[1]',
    message: /not an IPv4 or IPv6/,
  })),
  {
    what: 'access.header "x bad"',
    apply: (config) => ((config.access as Data).header = 'x bad'),
    path: 'access.header',
    message: /not a valid HTTP header name/,
  },
  {
    what: 'a timeout over 2^31−1 ms',
    apply: (config) => (((config.routes as Data[])[0]!.timeouts as Data).responseMs = 2 ** 31),
    path: 'routes[0].timeouts.responseMs',
    message: /at most 2147483647/,
  },
];

const mutated = (live: LiveGateway, change: (config: Data) => void): string => {
  const config = live.base();
  change(config);
  return stringify(config);
};

describe('config pipeline: the values validate used to accept', () => {
  let live: LiveGateway;

  before(async () => {
    live = await startLiveGateway();
  });

  after(async () => {
    await live.close();
  });

  for (const { what, apply, path, message } of REFUSED) {
    it(`${what}: validate and serve exit 1 at ${path} without a stack trace; a reload is refused and the old config serves`, async () => {
      const text = mutated(live, apply);
      // In process: the same function serve and reload call.
      await assert.rejects(buildConfigText(text, live.configFile, { env: live.env }), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.ok(
          error.problems.some((p) => p.path === path && message.test(p.message)),
          JSON.stringify(error.problems),
        );
        return true;
      });
      const dir = mkdtempSync(join(tmpdir(), 'tokengate-refused-'));
      writeFileSync(join(dir, 'client-key.pem'), readFileSync(join(live.dir, 'client-key.pem')));
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, text);
      for (const command of ['validate', 'serve']) {
        const run = await runCli([command, '--config', file], live.env);
        assert.equal(run.code, 1, `${command}: ${run.stdout}${run.stderr}`);
        assert.match(run.stderr, new RegExp(`${path.replace(/[[\]]/g, '\\$&')}: `), command);
        assert.doesNotMatch(run.stderr, /\n\s+at /, `${command} printed a stack trace`);
      }

      const { outcome, problems } = await live.reload(text);
      assert.equal(outcome, 'failure');
      assert.ok(
        problems.some((p) => p.path === path && p.file === live.configFile),
        JSON.stringify(problems),
      );
      await live.assertHealthy();
      await live.assertBaseRoutesServe();
      assert.equal((await live.reload(stringify(live.base()))).outcome, 'success');
    });
  }

  it('a refused reload changes nothing: no new connection in /connections, no series for the new route in /metrics', async () => {
    const connections = async () =>
      ((await (await fetch(`${live.serve.admin}/connections`)).json()) as { connections: Array<{ connection: string }> }).connections
        .map((c) => c.connection)
        .sort();
    const before = await connections();
    assert.deepEqual(before, ['basic', 'jwt']);
    const text = mutated(live, (config) => {
      (config.connections as Data).extra = { ...((config.connections as Data).basic as Data), clientId: 'live-extra' };
      (config.routes as Data[]).push({
        name: 'extra-route',
        match: { pathPrefix: '/extra' },
        upstream: live.upstream.url,
        auth: { connection: 'extra' },
        access: { allowFrom: ['zz:zz/64'] },
      });
    });
    const { outcome, problems } = await live.reload(text);
    assert.equal(outcome, 'failure');
    assert.ok(
      problems.some((p) => p.path === 'routes[3].access.allowFrom[0]'),
      JSON.stringify(problems),
    );
    assert.deepEqual(await connections(), before);
    const metrics = await (await fetch(`${live.serve.admin}/metrics`)).text();
    assert.doesNotMatch(metrics, /extra/);
    await live.assertBaseRoutesServe();
  });

  it('match.host bücher.example is normalised to its A-label: validate accepts it and a request for xn--bcher-kva.example matches', async () => {
    const text = mutated(live, (config) => {
      (config.routes as Data[]).push({
        name: 'idn',
        match: { pathPrefix: '/idn', host: 'bücher.example' },
        upstream: live.upstream.url,
        auth: { type: 'none' },
      });
    });
    const { config } = await buildConfigText(text, live.configFile, { env: live.env });
    assert.equal(config.routes.at(-1)!.match.host, 'xn--bcher-kva.example');
    const dir = mkdtempSync(join(tmpdir(), 'tokengate-idn-'));
    writeFileSync(join(dir, 'client-key.pem'), readFileSync(join(live.dir, 'client-key.pem')));
    writeFileSync(join(dir, 'gateway.yaml'), text);
    const validate = await runCli(['validate', '--config', join(dir, 'gateway.yaml')], live.env);
    assert.equal(validate.code, 0, validate.stderr);

    assert.equal((await live.reload(text)).outcome, 'success');
    const { proxy } = live.serve;
    // fetch() sets Host itself; a raw request says exactly which Host arrives.
    const status = await new Promise<number>((done, fail) => {
      import('node:http')
        .then(({ request }) => {
          const req = request(
            `${proxy}/idn/x`,
            { headers: { host: 'xn--bcher-kva.example', 'x-gateway-key': 'live-config-gate-key-0123456789' } },
            (res) => {
              res.resume();
              done(res.statusCode ?? 0);
            },
          );
          req.on('error', fail);
          req.end();
        })
        .catch(fail);
    });
    assert.equal(status, 200);
    assert.equal((await live.reload(stringify(live.base()))).outcome, 'success');
  });

  it('a host that is no host name (x y) is refused at match.host', async () => {
    const text = mutated(live, (config) => (((config.routes as Data[])[0]!.match as Data).host = 'x y'));
    const { outcome, problems } = await live.reload(text);
    assert.equal(outcome, 'failure');
    assert.ok(problems.some((p) => p.path === 'routes[0].match.host'));
    await live.assertBaseRoutesServe();
    assert.equal((await live.reload(stringify(live.base()))).outcome, 'success');
  });

  it('a FIFO as a secrets file is refused at secrets.*.file; the gateway keeps answering', async () => {
    const fifo = join(live.dir, 'secret.fifo');
    execFileSync('mkfifo', [fifo]);
    try {
      const text = mutated(live, (config) => ((config.secrets as Data)['jwt-key'] = { file: 'secret.fifo' }));
      const { outcome, problems } = await live.reload(text);
      assert.equal(outcome, 'failure');
      assert.ok(
        problems.some((p) => p.path === 'secrets.jwt-key.file' && /not a regular file \(a FIFO\)/.test(String(p.message))),
        JSON.stringify(problems),
      );
      await live.assertHealthy();
      await live.assertBaseRoutesServe();
    } finally {
      unlinkSync(fifo);
    }
    assert.equal((await live.reload(stringify(live.base()))).outcome, 'success');
  });

  it('a FIFO at the config path is refused; the gateway keeps answering, and validate says so', async () => {
    const fifo = join(tmpdir(), `tokengate-config-${process.pid}.fifo`);
    execFileSync('mkfifo', [fifo]);
    try {
      const run = await runCli(['validate', '--config', fifo], live.env);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /cannot read the config file: not a regular file \(a FIFO\)/);
    } finally {
      unlinkSync(fifo);
    }
    // The live gateway's config path itself becomes a FIFO (the symlink's target).
    const target = readFileSync(live.configFile, 'utf8');
    const targetPath = join(live.dir, '..', 'targets', 'gateway.yaml');
    unlinkSync(targetPath);
    execFileSync('mkfifo', [targetPath]);
    try {
      const { outcome, problems } = await live.sighup();
      assert.equal(outcome, 'failure');
      assert.ok(
        problems.some((p) => p.path === '' && p.file === live.configFile && /not a regular file \(a FIFO\)/.test(String(p.message))),
        JSON.stringify(problems),
      );
      await live.assertHealthy();
      await live.assertBaseRoutesServe();
    } finally {
      unlinkSync(targetPath);
      writeFileSync(targetPath, target);
    }
    assert.equal((await live.reload(target)).outcome, 'success');
  });
});

describe('config watcher', () => {
  let upstream: TestServer;
  let serve: ServeProcess | undefined;

  before(async () => {
    upstream = await startEchoUpstream();
  });

  after(async () => {
    await serve?.kill();
    await upstream.close();
  });

  const yaml = (prefix: string) =>
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'r', match: { pathPrefix: prefix }, upstream: upstream.url, auth: { type: 'none' } }],
    });

  it('arms again after the config folder is deleted and recreated, and logs both', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tokengate-watch-'));
    const dir = join(root, 'conf');
    mkdirSync(dir);
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, yaml('/before'));
    serve = await ServeProcess.start(file);
    rmSync(dir, { recursive: true });
    await serve.waitForLog((line) => line.event === 'config_watch_lost');
    mkdirSync(dir);
    writeFileSync(file, yaml('/after'));
    await serve.waitForLog((line) => line.event === 'config_watch_rearmed');
    await serve.waitForLog((line) => line.event === 'config_reloaded');
    const response = await fetch(`${serve.proxy}/after/x`);
    await response.arrayBuffer();
    assert.equal(response.status, 200);
    // And the new watch sees the next edit.
    writeFileSync(file, yaml('/again'));
    await serve.waitForLog(() => serve!.events('config_reloaded').length >= 2);
    const again = await fetch(`${serve.proxy}/again/x`);
    await again.arrayBuffer();
    assert.equal(again.status, 200);
  });
});

describe('config file reading', () => {
  it('refuses a device, a directory and a socket as a secret file, at its key path, without reading it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokengate-files-'));
    mkdirSync(join(dir, 'folder'));
    const socketPath = join(dir, 'secret.sock');
    const { createServer } = await import('node:net');
    const socket = createServer();
    await new Promise<void>((done) => socket.listen(socketPath, done));
    try {
      for (const [file, kind] of [
        ['/dev/zero', 'a device'],
        ['folder', 'a directory'],
        ['secret.sock', 'a socket'],
      ]) {
        const text = stringify({ secrets: { s: { file } }, cache: { store: 'memory' } });
        await assert.rejects(buildConfigText(text, join(dir, 'gateway.yaml'), { env: {} }), (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.equal(error.problems[0]?.path, 'secrets.s.file');
          assert.match(error.problems[0]?.message ?? '', new RegExp(`not a regular file \\(${kind}\\)`));
          return true;
        });
      }
    } finally {
      socket.close();
    }
  });
});
