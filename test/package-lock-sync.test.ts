/**
 * package-lock.json is in sync with package.json, so `npm install` on a fresh clone leaves
 * `git status` clean: the lockfile's root entry carries the same name, version, engines,
 * dependencies and devDependencies (ranges as written), and every dependency has an entry.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './support/deploy.js';

interface Manifest {
  name?: string;
  version?: string;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  name?: string;
  version?: string;
  lockfileVersion: number;
  packages: Record<string, Manifest>;
};
const root = lock.packages[''] ?? {};

describe('package-lock.json', () => {
  it('is a v3 lockfile whose top carries the package name and version', () => {
    assert.ok(lock.lockfileVersion >= 2);
    assert.equal(lock.name, pkg.name);
    assert.equal(lock.version, pkg.version);
  });

  for (const field of [
    'name',
    'version',
    'engines',
    'dependencies',
    'devDependencies',
    'optionalDependencies',
    'peerDependencies',
  ] as const) {
    it(`its root entry's ${field} matches package.json`, () => {
      assert.deepEqual(root[field], pkg[field], `package-lock.json packages[""].${field}: run npm install and commit the lockfile`);
    });
  }

  it('has an installed entry for every dependency', () => {
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }))
      assert.ok(lock.packages[`node_modules/${name}`], `node_modules/${name} is locked`);
  });
});
