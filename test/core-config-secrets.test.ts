/** Config problems name the key and never quote a password or secret value. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';

const PASSWORD = 'hunter2-audit';

async function problemsOf(yaml: string): Promise<ConfigError> {
  try {
    await buildConfigTextOnly(yaml, 'audit.yaml', { env: {} });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('the config was accepted');
}

describe('config problems that must not quote secrets', () => {
  for (const field of ['tokenUrl', 'issuer']) {
    it(`refuses user info in ${field} (it would reach /connections and error details) without quoting it`, async () => {
      const error = await problemsOf(`
secrets: { s: { value: a-client-secret } }
connections:
  c: { clientId: x, ${field}: "https://user:${PASSWORD}@auth.example/oauth", clientSecret: { secret: s } }
`);
      assert.equal(error.code, 'CONFIG_INVALID');
      assert.deepEqual(
        error.problems.map((p) => p.path),
        [`connections.c.${field}`],
      );
      assert.doesNotMatch(error.message, new RegExp(PASSWORD));
    });
  }

  it('refuses a cache.redis.url that is no URL at load, without quoting its password', async () => {
    const error = await problemsOf(`
cache: { store: redis, allowPlaintext: true, redis: { url: "redis://:${PASSWORD}@redis.internal:port" } }
`);
    assert.deepEqual(
      error.problems.map((p) => p.path),
      ['cache.redis.url'],
    );
    assert.doesNotMatch(error.message, new RegExp(PASSWORD));
  });

  it('reports an unquoted inline secret starting with * (a YAML alias) by position, without quoting it', async () => {
    const error = await problemsOf(`
secrets:
  s: { value: *${PASSWORD} }
`);
    assert.equal(error.problems.length, 1);
    assert.equal(error.problems[0]!.line, 3);
    assert.doesNotMatch(error.message, new RegExp(PASSWORD));
  });
});
