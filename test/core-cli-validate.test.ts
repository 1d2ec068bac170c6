/**
 * `node dist/cli.js validate` prints every warning `serve` would log, and `--strict` makes a
 * warning fail it (exit 1): a CI gate built on validate cannot pass an open gateway.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeConfig } from './support/gateway.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function validate(yaml: string, ...flags: string[]) {
  const { configFile } = writeConfig(yaml);
  const run = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'validate', '--config', configFile, ...flags], {
    cwd: ROOT,
    env: { ...process.env, TG_VALIDATE_SECRET: 'validate-secret-0123456789', TG_VALIDATE_GATE: 'validate-gate-0123456789' },
    encoding: 'utf8',
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const config = (host: string, access = '') => `
listen: { host: ${host} }
secrets: { s: { env: TG_VALIDATE_SECRET }${access === '' ? '' : ', gate: { env: TG_VALIDATE_GATE }'} }
${access}
connections:
  c: { clientId: gw, tokenUrl: https://auth.example/token, clientSecret: { secret: s } }
routes:
  - { name: r, match: { pathPrefix: /r }, upstream: https://api.example, auth: { connection: c } }
`;

describe('tokengate validate: warnings', () => {
  it('prints the SECURITY warning serve logs for a listener beyond loopback without an access policy', () => {
    const { status, stdout, stderr } = validate(config('0.0.0.0'));
    assert.equal(status, 0);
    assert.match(stderr, /^warning: SECURITY: the proxy listens on 0\.0\.0\.0 and routes with credentials have no access policy/m);
    assert.match(stdout, /valid \(1 routes, 1 connections, 1 warning\)/);
  });

  it('--strict turns a warning into a failure (exit 1)', () => {
    const { status, stdout, stderr } = validate(config('0.0.0.0'), '--strict');
    assert.equal(status, 1);
    assert.match(stderr, /warning: SECURITY/);
    assert.match(stderr, /1 warning; --strict refuses it/);
    assert.equal(stdout, '');
  });

  it('--strict passes a config serve has nothing to warn about', () => {
    for (const yaml of [config('127.0.0.1'), config('0.0.0.0', 'access: { apiKeys: [ { secret: gate } ] }')]) {
      const { status, stderr } = validate(yaml, '--strict');
      assert.equal(stderr, '');
      assert.equal(status, 0);
    }
  });

  it('prints the other warnings too (an inline secret)', () => {
    const { status, stderr } = validate(config('127.0.0.1').replace('{ env: TG_VALIDATE_SECRET }', '{ value: inline-secret }'), '--strict');
    assert.equal(status, 1);
    assert.match(stderr, /warning: secrets\.s is an inline value/);
    assert.ok(!stderr.includes('inline-secret'), 'never the value');
  });
});
