/**
 * Programs the tests run that npm does not install (redis-server, promtool, prometheus, openssl,
 * chromium): every test that needs one asks here first.
 *
 * On a machine without the program the suite is skipped, with one line naming the program and the
 * Debian package that has it, and the skip is recorded for the summary `npm test` prints at the end
 * (scripts/test.ts). With TOKENGATE_REQUIRE_PROGRAMS=1 (.ci/run sets it) a missing program is a
 * failure instead, so CI never skips a test.
 */
import { appendFileSync, statSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';

/** Set by scripts/test.ts: a file each skip is appended to, one JSON line per skip. */
export const SKIP_LOG_ENV = 'TOKENGATE_SKIP_LOG';
export const REQUIRE_ENV = 'TOKENGATE_REQUIRE_PROGRAMS';

export interface SkipRecord {
  program: string;
  debianPackage: string;
  /** The test file, relative to the working directory. */
  file: string;
  reason: string;
}

/** The absolute path of an executable `name` on PATH, or undefined. A lookup, not a shell: nothing runs. */
export function findProgram(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      const stat = statSync(candidate);
      // Any execute bit: the tests run as whoever owns the checkout, often root in a container.
      if (stat.isFile() && (stat.mode & 0o111) !== 0) return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Options for the `describe` (or `it`) that needs `name`: `{ skip: false }` when it is on PATH,
 * else `{ skip: reason }`. Use it as `describe('...', requireProgram('promtool', 'prometheus'), () => ...)`.
 * Throws under TOKENGATE_REQUIRE_PROGRAMS=1, which fails the test file.
 */
export function requireProgram(name: string, debianPackage: string): { skip: string | false } {
  if (findProgram(name) !== undefined) return { skip: false };
  const reason = `${name} is not installed: apt-get install ${debianPackage} (Debian package ${debianPackage})`;
  if (process.env[REQUIRE_ENV] === '1') throw new Error(`${reason}; ${REQUIRE_ENV}=1 makes a missing program a failure`);
  const log = process.env[SKIP_LOG_ENV];
  if (log !== undefined && log !== '') {
    const file = relative(process.cwd(), process.argv[1] ?? '');
    const record: SkipRecord = { program: name, debianPackage, file, reason };
    appendFileSync(log, `${JSON.stringify(record)}\n`);
  }
  return { skip: reason };
}

/** The path of a program a running test needs; only call it inside a suite `requireProgram` guards. */
export function programPath(name: string): string {
  const path = findProgram(name);
  if (path === undefined) throw new Error(`${name} is not on PATH`);
  return path;
}
