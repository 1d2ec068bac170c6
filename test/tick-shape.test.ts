import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const PROBE = join(dirname(fileURLToPath(import.meta.url)), 'support', 'tick-shape-probe.ts');

function probe(): Promise<{ kept: boolean; isTick: boolean; again: boolean; sameMap: boolean }> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--allow-natives-syntax', '--expose-gc', '--import', 'tsx', PROBE],
      { timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error !== null) return fail(new Error(`${error.message}\n${stderr}`));
        done(JSON.parse(stdout) as { kept: boolean; isTick: boolean; again: boolean; sameMap: boolean });
      },
    );
  });
}

describe('keepTickShape', () => {
  it('holds a live TickObject, once, whose map new TickObjects still get after full collections', async () => {
    const result = await probe();
    assert.deepEqual(result, { kept: true, isTick: true, again: true, sameMap: true });
  });
});
