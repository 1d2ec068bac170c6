/** Config errors: all at once, with file, key path and line:column; `validate`; no listener on a bad config. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, type ConfigProblem } from '../src/config/errors.js';
import { buildConfigOnly, buildConfigTextOnly } from '../src/runtime/build.js';
import { createLogger } from '../src/observability/log.js';
import { Gateway } from '../src/gateway/gateway.js';
import { writeConfig } from './support/gateway.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');

/** The ConfigError `parse` throws, or a failed assertion when it does not throw one. */
async function problemsOf(parse: () => Promise<unknown>): Promise<readonly ConfigProblem[]> {
  try {
    await parse();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('the config was accepted');
}

function problemAt(problems: readonly ConfigProblem[], path: string): ConfigProblem {
  const found = problems.find((p) => p.path === path);
  assert.ok(found, `no problem at ${path}; got ${problems.map((p) => `${p.path}: ${p.message}`).join(' | ')}`);
  return found;
}

const VALID = `
secrets:
  s: { env: TG_CFG_SECRET }
connections:
  c: { clientId: id, tokenUrl: https://auth.example/token, clientSecret: { secret: s } }
routes:
  - { name: r, match: { pathPrefix: /r }, upstream: https://api.example, auth: { connection: c } }
`;
const ENV = { TG_CFG_SECRET: 'x' };

describe('config problems', () => {
  it('accepts a valid config as one frozen object', async () => {
    const config = await buildConfigTextOnly(VALID, 'ok.yaml', { env: ENV });
    assert.equal(config.routes[0]!.name, 'r');
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.routes) && Object.isFrozen(config.routes[0]!.match));
  });

  // Lines counted from the template's first line, which is empty.
  const cases: Array<[string, string, string, RegExp, number]> = [
    [
      'an unknown connection',
      VALID.replace('connection: c }', 'connection: nope }'),
      'routes[0].auth.connection',
      /unknown connection "nope"/,
      7,
    ],
    [
      'an unknown secret',
      VALID.replace('{ secret: s }', '{ secret: missing }'),
      'connections.c.clientSecret.secret',
      /unknown secret: no entry of this name under secrets \(known: s\)/,
      5,
    ],
    [
      'duplicate route names',
      `${VALID}  - { name: r, match: { pathPrefix: /x }, upstream: https://api.example, auth: { type: none } }\n`,
      'routes[1].name',
      /duplicate route name "r"/,
      8,
    ],
    ['an unset environment variable behind an env secret', VALID, 'secrets.s.env', /TG_CFG_SECRET is not set/, 3],
    [
      'an unknown key',
      VALID.replace('pathPrefix: /r }', 'pathPrefix: /r, pathprefix: /q }'),
      'routes[0].match.pathprefix',
      /unknown key/,
      7,
    ],
    [
      'a param that would change the grant',
      VALID.replace('clientSecret: { secret: s } }', 'clientSecret: { secret: s }, params: { grant_type: password } }'),
      'connections.c.params.grant_type',
      /set by tokengate/,
      5,
    ],
    [
      'a route param that would replace the client id',
      VALID.replace('auth: { connection: c }', 'auth: { connection: c, params: { client_id: other } }'),
      'routes[0].auth.params.client_id',
      /set by tokengate/,
      7,
    ],
    [
      'an http: tokenUrl on a non-loopback host',
      VALID.replace('https://auth.example/token', 'http://auth.example/token'),
      'connections.c.tokenUrl',
      /must be https:/,
      5,
    ],
  ];
  for (const [what, yaml, path, message, line] of cases) {
    it(`reports ${what} with its key path and line`, async () => {
      const problem = problemAt(
        await problemsOf(() => buildConfigTextOnly(yaml, 'bad.yaml', { env: what.includes('unset') ? {} : ENV })),
        path,
      );
      assert.match(problem.message, message);
      assert.equal(problem.line, line);
      assert.equal(typeof problem.column, 'number');
    });
  }

  it('accepts an http: tokenUrl on a loopback host', async () => {
    await assert.doesNotReject(() =>
      buildConfigTextOnly(VALID.replace('https://auth.example/token', 'http://127.0.0.1:9/token'), 'ok.yaml', { env: ENV }),
    );
  });

  it('reports every problem at once, schema and cross-reference problems together', async () => {
    const yaml = `
listen: { host: 127.0.0.1, bogus: 1 }
secrets:
  s: { env: TG_CFG_UNSET }
  broken: { nope: 1 }
connections:
  c: { clientId: id, tokenUrl: http://auth.example/token, clientSecret: { secret: missing } }
  d: { clientId: id, tokenUrl: https://auth.example/token, clientSecret: { secret: broken } }
routes:
  - { name: a, match: { pathPrefix: relative }, upstream: https://api.example, auth: { connection: d } }
  - { name: b, match: { pathPrefix: /b }, upstream: https://api.example, auth: { connection: c } }
  - { name: c, match: { pathPrefix: /c }, upstream: https://api.example, auth: { connection: nowhere } }
  - { name: b, match: { pathPrefix: /d }, upstream: https://api.example, auth: { type: none } }
`;
    const problems = await problemsOf(() => buildConfigTextOnly(yaml, 'many.yaml', { env: {} }));
    const paths = problems.map((p) => p.path).sort();
    assert.deepEqual(paths, [
      'connections.c.clientSecret.secret',
      'connections.c.tokenUrl',
      'listen.bogus',
      'routes[0].match.pathPrefix',
      'routes[2].auth.connection',
      'routes[3].name',
      'secrets.broken',
      'secrets.s.env',
    ]);
    for (const problem of problems) assert.equal(typeof problem.line, 'number', problem.path);
  });

  it('reports a YAML syntax error with line and column', async () => {
    const [problem, ...rest] = await problemsOf(() =>
      buildConfigTextOnly('routes:\n  - name: a\n    match: { pathPrefix: /a\n  - name: b\n', 'syntax.yaml'),
    );
    assert.equal(rest.length, 0);
    assert.match(problem!.message, /YAML syntax error/);
    assert.equal(problem!.line, 4);
    assert.equal(problem!.column, 3);
  });

  it('names the file, key path and line:column in the error message', async () => {
    const { configFile } = writeConfig(VALID.replace('connection: c }', 'connection: nope }'));
    await assert.rejects(
      () => buildConfigOnly(configFile, { env: ENV }),
      (error: unknown) =>
        error instanceof ConfigError && error.message.includes(`${configFile}:7:`) && error.message.includes('routes[0].auth.connection'),
    );
  });

  it('never starts a listener on an invalid config', async () => {
    const { configFile } = writeConfig(VALID.replace('connection: c }', 'connection: nope }'));
    // eslint-disable-next-line @typescript-eslint/unbound-method -- saved to be put back on the prototype, never called unbound
    const listen = http.Server.prototype.listen;
    let listens = 0;
    http.Server.prototype.listen = function (this: http.Server, ...args: unknown[]) {
      listens++;
      return listen.apply(this, args as never);
    } as typeof listen;
    try {
      await assert.rejects(
        Gateway.start({ configFile, env: ENV, logger: createLogger({ level: 'silent' }), listenPort: 0, adminPort: 0 }),
        (error: unknown) => error instanceof ConfigError,
      );
    } finally {
      http.Server.prototype.listen = listen;
    }
    assert.equal(listens, 0);
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const { PARTNER_CLIENT_SECRET: _, TOKENGATE_CONFIG: __, ...base } = process.env;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...base, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

describe('tokengate validate', { concurrency: true }, () => {
  it('exits 0 and says so for a valid config', async () => {
    const { configFile } = writeConfig(VALID);
    const run = await cli(['validate', '--config', configFile], ENV);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /valid \(1 routes, 1 connections(, \d+ warnings?)?\)/);
  });

  it('exits 1 and prints every problem with file, line:column and key path', async () => {
    const { configFile } = writeConfig(
      VALID.replace('connection: c }', 'connection: nope }').replace('{ secret: s }', '{ secret: missing }'),
    );
    const run = await cli(['validate', '--config', configFile], ENV);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /2 problems/);
    assert.ok(
      run.stderr.includes(`${configFile}:7:`) && run.stderr.includes('routes[0].auth.connection: unknown connection "nope"'),
      run.stderr,
    );
    assert.ok(
      run.stderr.includes(`${configFile}:5:`) &&
        run.stderr.includes('connections.c.clientSecret.secret: unknown secret: no entry of this name'),
      run.stderr,
    );
  });

  it('exits 1 for a file that does not exist', async () => {
    const run = await cli(['validate', '--config', join(ROOT, 'no-such-config.yaml')]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot read the config file: ENOENT/);
  });

  it('exits 2 for bad command-line usage', async () => {
    for (const args of [['validate', '--no-such-option'], ['frobnicate'], []]) {
      const run = await cli(args);
      assert.equal(run.code, 2, args.join(' '));
      assert.match(run.stderr, /usage:/);
    }
  });

  it('validates the shipped config/gateway.yaml once its secret is set', async () => {
    const run = await cli(['validate', '--config', 'config/gateway.yaml'], { PARTNER_CLIENT_SECRET: 'set' });
    assert.equal(run.code, 0, run.stderr);
    const unset = await cli(['validate']);
    assert.equal(unset.code, 1);
    assert.match(
      unset.stderr,
      /config\/gateway\.yaml:\d+:\d+: secrets\.partner-secret\.env: environment variable PARTNER_CLIENT_SECRET is not set/,
    );
  });

  it('serve exits 1 on an invalid config without listening', async () => {
    const { configFile } = writeConfig(VALID.replace('connection: c }', 'connection: nope }'));
    const run = await cli(['serve', '--config', configFile], ENV);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /routes\[0\]\.auth\.connection/);
    assert.doesNotMatch(run.stdout, /listening/);
  });
});
