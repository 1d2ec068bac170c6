/**
 * The editor schema (config/tokengate.schema.json): generated from the loader's zod schema,
 * committed up to date, and it accepts the example config. No JSON Schema validator is installed,
 * so the committed JSON is interpreted by zod's own JSON Schema reader (z.fromJSONSchema): it reads
 * the JSON document, not the zod schema it came from, so a wrong file fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { z } from 'zod';
import { CONFIG_JSON_SCHEMA_FILE, renderConfigJsonSchema } from '../src/config/json-schema.js';
import { buildConfigOnly } from '../src/runtime/build.js';

const EXAMPLE = 'config/gateway.yaml';
const committed = readFileSync(CONFIG_JSON_SCHEMA_FILE, 'utf8');
const validator = z.fromJSONSchema(JSON.parse(committed) as Parameters<typeof z.fromJSONSchema>[0]);
/** The example as an editor sees it: raw YAML, ${VAR} not yet substituted. */
const example = (): Record<string, any> => parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, any>;

const issues = (value: unknown) => {
  const result = validator.safeParse(value);
  return result.success ? [] : result.error.issues.map((issue) => ({ code: issue.code, path: issue.path.join('.') }));
};

describe('config JSON Schema', () => {
  it('is committed exactly as npm run schema generates it', async () => {
    assert.equal(committed, renderConfigJsonSchema(), 'run npm run schema and commit config/tokengate.schema.json');
  });

  it('is what the example config points editors at', async () => {
    assert.match(readFileSync(EXAMPLE, 'utf8').split('\n')[0]!, /^# yaml-language-server: \$schema=\.\/tokengate\.schema\.json$/);
    const schema = JSON.parse(committed) as Record<string, unknown>;
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(typeof schema.title, 'string');
  });

  it('accepts the example config, ${VAR} values included', async () => {
    assert.match(readFileSync(EXAMPLE, 'utf8'), /port: \$\{TOKENGATE_PORT:-8080\}/);
    assert.deepEqual(issues(example()), []);
  });

  it('and the loader accepts the example config too', async () => {
    const config = await buildConfigOnly(EXAMPLE, { env: { PARTNER_CLIENT_SECRET: 'example-secret' } });
    assert.equal(config.listen.port, 8080);
    assert.equal(config.routes.length, 2);
  });

  it('rejects unknown keys, missing required keys and values outside an enum, at their paths', async () => {
    const config = example();
    config.connections['partner-api'].clientSecretz = 'typo';
    delete config.routes[0].upstream;
    config.routes[0].replayOn401 = 'sometimes';
    config.connections['partner-api'].clientSecret.method = 'client_secret_magic';
    assert.deepEqual(
      issues(config)
        .map((i) => i.path)
        .sort(),
      ['connections.partner-api', 'connections.partner-api.clientSecret.method', 'routes.0.replayOn401', 'routes.0.upstream'],
    );
  });

  it('keeps defaults optional (input side) and shows them to editors', async () => {
    assert.deepEqual(
      issues({ routes: [{ name: 'r', match: { pathPrefix: '/' }, upstream: 'http://127.0.0.1', auth: { type: 'none' } }] }),
      [],
    );
    const schema = JSON.parse(committed) as { properties: { listen: { properties: { port: { default: number } } } } };
    assert.equal(schema.properties.listen.properties.port.default, 8080);
  });

  it('takes ${VAR} for a typed value but not any string', async () => {
    assert.deepEqual(
      issues({
        listen: { port: '${PORT}' },
        routes: [{ name: 'r', match: { pathPrefix: '/' }, upstream: 'http://x', stripPrefix: '${STRIP:-true}', auth: { type: 'none' } }],
      }),
      [],
    );
    assert.deepEqual(
      issues({ listen: { port: 'eighty' } }).map((i) => i.path),
      ['listen.port'],
    );
  });
});
