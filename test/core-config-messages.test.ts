/**
 * Problems worded for the person fixing the file: "did you mean" for a mistyped key, a plain
 * "is required" for a missing one, one problem per unset `${VAR}` however many values use it (and
 * nothing more about those values), "is empty" told apart from "is not set".
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { writeConfig } from './support/gateway.js';

async function problemsOf(yaml: string, env: NodeJS.ProcessEnv = {}, file = 'gateway.yaml') {
  try {
    await buildConfigTextOnly(yaml, file, { env });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems.map((p) => ({ path: p.path, message: p.message }));
  }
  return assert.fail('the config was accepted');
}

const CONNECTION = `
secrets: { s: { value: messages-secret } }
connections:
  c:
    clientId: gw
    tokenUrl: https://auth.example/token
    clientSecret: { secret: s }
routes:
  - { name: r, match: { pathPrefix: /r }, upstream: https://api.example, auth: { connection: c } }
`;

describe('config problems a person can act on', () => {
  it('suggests the closest known key at that place for an unknown one', async () => {
    const problems = await problemsOf(
      CONNECTION.replace(
        'clientSecret: { secret: s }',
        'privateKeyJwt: { secret: s, keyID: k1, algoritm: RS256 }\n    tokenURL: https://auth.example/t\n    displayname: C',
      ).replace('upstream:', 'upstram:'),
    );
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
    assert.equal(byPath['connections.c.privateKeyJwt.keyID'], 'unknown key; did you mean `keyId`?');
    assert.equal(byPath['connections.c.privateKeyJwt.algoritm'], 'unknown key; did you mean `algorithm`?');
    assert.equal(byPath['connections.c.tokenURL'], 'unknown key; did you mean `tokenUrl`?');
    assert.equal(byPath['connections.c.displayname'], 'unknown key; did you mean `displayName`?');
    assert.equal(byPath['routes[0].upstram'], 'unknown key; did you mean `upstream`?');
  });

  it('says only "unknown key" when nothing known is close', async () => {
    const problems = await problemsOf(CONNECTION.replace('clientId: gw', 'clientId: gw\n    zzzzzzzz: 1'));
    assert.deepEqual(problems, [{ path: 'connections.c.zzzzzzzz', message: 'unknown key' }]);
  });

  it("names a missing required key plainly, not in zod's words", async () => {
    const problems = await problemsOf(CONNECTION.replace('    clientId: gw\n', '').replace('name: r, ', ''));
    assert.deepEqual(problems, [
      { path: 'connections.c.clientId', message: '`clientId` is required' },
      { path: 'routes[0].name', message: '`name` is required' },
    ]);
  });

  it('reports an unset variable once, naming every other value that uses it, and nothing else about those values', async () => {
    const yaml = `listen: { port: "\${PORT}" }\n${CONNECTION.replace('https://auth.example/token', '${AUTH}/token').replace(
      'upstream: https://api.example',
      'upstream: "${AUTH}/api"',
    )}  - { name: r2, match: { pathPrefix: "/\${AUTH}" }, upstream: "\${AUTH}/two", auth: { connection: c } }\n`;
    assert.deepEqual(await problemsOf(yaml), [
      { path: 'listen.port', message: 'environment variable PORT is not set (write ${PORT:-default} for a default)' },
      {
        path: 'connections.c.tokenUrl',
        message:
          'environment variable AUTH is not set (write ${AUTH:-default} for a default); ' +
          'also used at routes[0].upstream, routes[1].match.pathPrefix, routes[1].upstream',
      },
    ]);
  });

  it('tells an empty variable from an unset one, in values and in env secrets', async () => {
    const yaml = CONNECTION.replace('{ s: { value: messages-secret } }', '{ s: { env: TG_MSG_SECRET } }').replace(
      'https://auth.example/token',
      '${AUTH_URL}',
    );
    assert.deepEqual(await problemsOf(yaml, { AUTH_URL: '', TG_MSG_SECRET: '' }), [
      { path: 'connections.c.tokenUrl', message: 'environment variable AUTH_URL is empty (write ${AUTH_URL:-default} for a default)' },
      { path: 'secrets.s.env', message: 'environment variable TG_MSG_SECRET is empty' },
    ]);
    assert.deepEqual(await problemsOf(yaml, {}), [
      { path: 'connections.c.tokenUrl', message: 'environment variable AUTH_URL is not set (write ${AUTH_URL:-default} for a default)' },
      { path: 'secrets.s.env', message: 'environment variable TG_MSG_SECRET is not set' },
    ]);
  });

  it('refuses an empty secret file', async () => {
    const yaml = CONNECTION.replace('{ s: { value: messages-secret } }', '{ s: { file: client.secret } }');
    const { configFile } = writeConfig(yaml, { 'client.secret': '\n' });
    assert.deepEqual(await problemsOf(readFileSync(configFile, 'utf8'), {}, configFile), [
      { path: 'secrets.s.file', message: 'client.secret is empty' },
    ]);
  });
});
