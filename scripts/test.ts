/**
 * `npm test`: node:test over test/*.test.ts (or the files given), then which test files skipped
 * something because a program is missing on this machine, and the Debian packages to install.
 * The runner's output, its closing counts and its exit code are passed through unchanged; the
 * list comes after them as `#` comment lines, which TAP readers ignore.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SKIP_LOG_ENV, type SkipRecord } from '../test/support/programs.js';

const files =
  process.argv.length > 2
    ? process.argv.slice(2)
    : readdirSync('test')
        .filter((name) => name.endsWith('.test.ts'))
        .sort()
        .map((name) => join('test', name));

const dir = mkdtempSync(join(tmpdir(), 'tokengate-test-'));
const log = join(dir, 'skipped.jsonl');
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files], {
  stdio: 'inherit',
  env: { ...process.env, [SKIP_LOG_ENV]: log },
});
const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];

let records: SkipRecord[] = [];
try {
  records = readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as SkipRecord);
} catch {
  // no file: nothing was skipped
}
rmSync(dir, { recursive: true, force: true });

if (records.length > 0) {
  const byProgram = new Map<string, { debianPackage: string; files: Set<string> }>();
  for (const record of records) {
    const entry = byProgram.get(record.program) ?? { debianPackage: record.debianPackage, files: new Set<string>() };
    entry.files.add(record.file);
    byProgram.set(record.program, entry);
  }
  const lines = ['Skipped (the # SKIP lines above): a program they run is not installed on this machine'];
  for (const [program, { debianPackage, files: where }] of [...byProgram].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`  ${program} (Debian package ${debianPackage}): ${[...where].sort().join(', ')}`);
  }
  const packages = [...new Set([...byProgram.values()].map((entry) => entry.debianPackage))].sort();
  lines.push(`To run them: apt-get install ${packages.join(' ')} (.ci/run installs them, and there a missing program fails the run)`);
  process.stdout.write(lines.map((line) => `# ${line}\n`).join(''));
}
process.exitCode = code ?? (signal === null ? 1 : 128);
