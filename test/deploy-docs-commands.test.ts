/**
 * The deploy commands the docs print work as written: every `docker run -v FOLDER:/etc/tokengate`
 * in README.md and docs/*.md mounts a folder of the repo that holds a gateway.yaml passing
 * validate --strict (with its secret files provided); every `docker compose -f FILE` and
 * `kubectl apply -k FOLDER` names something that exists; the Dockerfile's pointer to the docs
 * names a section that exists.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { at, type Obj, ROOT, validateContainerConfig } from './support/deploy.js';

const docs = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const text = new Map(docs.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]));

function all(pattern: RegExp): { file: string; match: RegExpExecArray }[] {
  return [...text].flatMap(([file, body]) => [...body.matchAll(pattern)].map((match) => ({ file, match })));
}

/** `-v "$PWD/deploy/docker:/etc/tokengate:ro"` (quoted or not, $PWD or ${PWD}) -> deploy/docker. */
const MOUNT = /-v\s+"?\$\{?PWD\}?\/([^":\s]+):\/etc\/tokengate(?::ro)?"?/g;

describe('docs: deploy commands', () => {
  const mounts = all(MOUNT);

  it('the docs mount a config folder in at least one docker run', () => {
    assert.ok(mounts.length >= 1);
  });

  for (const { file, match } of mounts) {
    const folder = match[1] ?? '';
    it(`${file}: ${match[0]} holds a container-ready gateway.yaml that passes validate --strict`, () => {
      const configFile = join(ROOT, folder, 'gateway.yaml');
      assert.ok(existsSync(configFile), `${folder}/gateway.yaml exists`);
      const config = readFileSync(configFile, 'utf8');
      const parsed = parse(config) as Obj;
      // Published with -p, the listener must take connections from outside the container.
      assert.equal(at(parsed, 'listen', 'host'), '0.0.0.0');
      assert.ok(at(parsed, 'access') !== undefined, 'an access policy');
      const { status, output } = validateContainerConfig(config);
      assert.equal(status, 0, output);
      assert.doesNotMatch(output, /warning/);
    });
  }

  it('every docker compose -f and kubectl apply -k names a file or kustomization of the repo', () => {
    const compose = all(/docker compose -f ([^\s`]+)/g);
    const kustomize = all(/kubectl apply -k ([^\s`]+)/g);
    assert.ok(compose.length >= 1 && kustomize.length >= 1);
    for (const { file, match } of compose) assert.ok(existsSync(join(ROOT, match[1] ?? '')), `${file}: ${match[0]}`);
    for (const { file, match } of kustomize)
      assert.ok(existsSync(join(ROOT, match[1] ?? '', 'kustomization.yaml')), `${file}: ${match[0]}`);
  });

  it("the Dockerfile's pointers name doc sections that exist", () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const pointers = [...dockerfile.matchAll(/See (\S+\.md),? "([^"]+)"/g)];
    assert.ok(pointers.length >= 1);
    for (const [pointer, file = '', heading = ''] of pointers) {
      const body = text.get(file);
      assert.ok(body !== undefined, `${pointer}: ${file} exists`);
      assert.match(body, new RegExp(`^#+ ${heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'm'), pointer);
    }
  });
});
