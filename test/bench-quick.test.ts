/**
 * `npm run bench -- --quick` as part of the suite: the benchmark's smoke test. It asserts only
 * correctness (every request answered 2xx, 500 cold callers shared one token request), never a
 * timing; the figures it prints are for people.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function runQuickBench(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'run.ts'), '--quick'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('exit', (code) => done({ code, stdout, stderr }));
  });
}

test('bench --quick: every request through the gateway and the baseline succeeds, with exactly one token request', async () => {
  // `npm test` builds dist/ first; the benchmark runs the built CLI like a user would.
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'run `npm run build` first');
  const { code, stdout, stderr } = await runQuickBench();
  assert.equal(code, 0, `bench --quick failed:\n${stdout}\n${stderr}`);
  assert.match(stdout, /cold start: 500\/500 answered 200 .* with 1 token request/);
  assert.match(stdout, /token requests made by tokengate: 1 /);
  assert.match(stdout, /^websocket echo .*; 0 errors\)$/m);
  assert.match(stdout, /^server-sent events .*; 0 errors\)$/m);
  assert.doesNotMatch(stderr, /FAIL/);
});
