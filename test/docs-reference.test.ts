/**
 * The reference docs hold what the code does: docs/configuration.md is generated from the zod
 * config schema (scripts/config-doc.ts) and committed exactly as `npm run schema` writes it; the
 * README's config example loads; every error code is in docs/errors.md with its status, and every
 * metric with its labels in the docs.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { CONFIG_DOC_FILE, renderConfigDoc } from '../scripts/config-doc.js';
import { Metrics } from '../src/observability/metrics.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { ERRORS, type ErrorCode } from '../src/errors/codes.js';
import { TokengateError } from '../src/errors/base.js';
import { ACCESS_DENIALS, TOKEN_FAILURE_REASONS, UPSTREAM_ERROR_REASONS } from '../src/errors/reasons.js';

const docs = (): string[] =>
  readdirSync('docs', { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.md'))
    .map((entry) => readFileSync(join('docs', entry.name), 'utf8'));

/** Key paths of a parsed YAML value, written as the page writes them (`<key>`, `<name>`, `[]`). */
function keyPaths(value: unknown, path: string, out: Set<string>): Set<string> {
  if (Array.isArray(value)) for (const item of value) keyPaths(item, `${path}[]`, out);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      const map =
        path === 'connections' ? '<key>' : /^(secrets|connections\.<key>\.params|routes\[\]\.auth\.params)$/.test(path) ? '<name>' : '';
      const next = path === '' ? key : `${path}.${map === '' ? key : map}`;
      if (next !== '$schema') out.add(next);
      keyPaths(child, next, out);
    }
  }
  return out;
}

describe('configuration reference (docs/configuration.md)', () => {
  it('is committed exactly as npm run schema generates it from the schema', () => {
    assert.equal(readFileSync(CONFIG_DOC_FILE, 'utf8'), renderConfigDoc(), 'run npm run schema and commit docs/configuration.md');
  });

  it('lists every key the example config sets', () => {
    const page = readFileSync(CONFIG_DOC_FILE, 'utf8');
    const used = keyPaths(parse(readFileSync('config/gateway.yaml', 'utf8')), '', new Set());
    assert.ok(used.size > 20);
    for (const key of used) assert.ok(page.includes(`| \`${key}\` |`), `${key} is missing from ${CONFIG_DOC_FILE}`);
  });

  it("loads the README's config example", async () => {
    const readme = readFileSync('README.md', 'utf8');
    const example = /## Configuration[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example !== undefined, 'README.md has a yaml block under ## Configuration');
    assert.ok(example.trimEnd().split('\n').length <= 20);
    const config = await buildConfigTextOnly(example, 'README.md', { env: { PARTNER_CLIENT_SECRET: 'example' } });
    assert.equal(config.routes.length, 2);
  });
});

describe('errors and metrics in the docs', () => {
  it('lists every error code in docs/errors.md with the status the gateway sends', () => {
    const page = readFileSync('docs/errors.md', 'utf8');
    const codes = Object.keys(ERRORS) as ErrorCode[];
    assert.ok(codes.length >= 19);
    for (const code of codes) {
      const row = new RegExp(`^\\| \`${code}\` \\| (\\d{3})`, 'm').exec(page);
      assert.ok(row !== null, `${code} has no row in docs/errors.md`);
      assert.equal(Number(row[1]), new TokengateError(code, undefined).statusCode, `${code}'s status in docs/errors.md`);
    }
  });

  it('names every value of the fixed reason labels in the row of their metric', () => {
    const lines = docs().join('\n').split('\n');
    const reasons: Array<[string, readonly string[]]> = [
      ['tokengate_token_failures_total', TOKEN_FAILURE_REASONS],
      ['tokengate_upstream_errors_total', UPSTREAM_ERROR_REASONS],
      ['tokengate_access_denied_total', ACCESS_DENIALS],
    ];
    for (const [metric, values] of reasons) {
      const row = lines.find((line) => line.startsWith(`| \`${metric}\` |`));
      assert.ok(row !== undefined, `${metric} has no row in docs/`);
      for (const value of values) assert.ok(row.includes(`\`${value}\``), `${metric}'s reason ${value} is not in its row`);
    }
  });

  it('names every tokengate metric and each of its labels in the docs', () => {
    const lines = docs().join('\n').split('\n');
    const own = new Metrics().registry.getMetricsAsArray().filter((metric) => !/^tokengate_(process|nodejs)_/.test(metric.name));
    assert.ok(own.length >= 12);
    for (const metric of own) {
      const row = lines.find((line) => line.startsWith(`| \`${metric.name}\` |`));
      assert.ok(row !== undefined, `${metric.name} has no row in docs/`);
      const labels = (metric as unknown as { labelNames: readonly string[] }).labelNames;
      for (const label of labels) assert.ok(row.includes(`\`${label}\``), `${metric.name}'s label ${label} is not in its row`);
    }
  });
});
