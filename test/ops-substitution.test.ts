/** `${VAR}` and `${VAR:-default}` in config values, as the README's operating section describes them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';

const config = (yaml: string, env: NodeJS.ProcessEnv) => buildConfigTextOnly(yaml, 'gateway.yaml', { env });

const ROUTE = `
routes:
  - name: r
    match: { pathPrefix: /r }
    upstream: \${UPSTREAM:-http://127.0.0.1:1}/base
    auth: { type: none }
`;

async function problems(yaml: string, env: NodeJS.ProcessEnv) {
  try {
    await config(yaml, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.problems.map((p) => ({ path: p.path, message: p.message }));
  }
  return assert.fail('the config was accepted');
}

describe('${VAR} substitution', () => {
  it('replaces variables inside strings, with the default when unset or empty', async () => {
    assert.equal((await config(ROUTE, { UPSTREAM: 'http://10.0.0.1:8080' })).routes[0]!.upstream, 'http://10.0.0.1:8080/base');
    assert.equal((await config(ROUTE, {})).routes[0]!.upstream, 'http://127.0.0.1:1/base');
    assert.equal((await config(ROUTE, { UPSTREAM: '' })).routes[0]!.upstream, 'http://127.0.0.1:1/base');
  });

  it('gives a value that is one variable the type it reads as (quoted in a flow mapping)', async () => {
    const loaded = await config(
      `listen:\n  port: \${PORT}\nadmin: { port: "\${ADMIN:-9191}" }\n${ROUTE.replace('auth:', 'stripPrefix: ${STRIP:-true}\n    auth:')}`,
      { PORT: '8181' },
    );
    assert.equal(loaded.listen.port, 8181);
    assert.equal(loaded.admin.port, 9191);
    assert.equal(loaded.routes[0]!.stripPrefix, true);
  });

  it('reports an unset variable without a default at its key path', async () => {
    assert.deepEqual(await problems(`listen:\n  host: \${BIND_HOST}\n${ROUTE}`, {}), [
      { path: 'listen.host', message: 'environment variable BIND_HOST is not set (write ${BIND_HOST:-default} for a default)' },
    ]);
  });

  it('keeps $${VAR} literal', async () => {
    const loaded = await config(
      ROUTE.replace('pathPrefix: /r', () => 'pathPrefix: "/$${NOT_A_VAR}"'),
      { NOT_A_VAR: 'x' },
    );
    assert.equal(loaded.routes[0]!.match.pathPrefix, '/${NOT_A_VAR}');
  });

  it('never substitutes inside secret definitions', async () => {
    const yaml = `secrets:\n  s: { value: "\${UNSET_HERE}" }\nconnections:\n  c:\n    clientId: id\n    tokenUrl: http://127.0.0.1:1/token\n    clientSecret: { secret: s }\n${ROUTE}`;
    // Substituted, an unset variable would be an error, and a set one would change the secret.
    const unset = await config(yaml, {});
    const set = await config(yaml, { UNSET_HERE: 'substituted' });
    assert.equal(unset.connections.get('c')!.fingerprint, set.connections.get('c')!.fingerprint);
  });
});
