/** How every stage reports a problem: at a key path, collected so that all of them are shown at once. */
import { ConfigError, formatPath, type ConfigProblem } from './errors.js';
import type { ParsedConfig } from './parse.js';

export type Report = (keyPath: readonly PropertyKey[], message: string) => void;

/** Collects the problems of one config file, each placed at its line and column. */
export class Problems {
  readonly #list: ConfigProblem[] = [];
  /** Key paths already explained by another problem: what later stages find there is not repeated. */
  readonly #muted = new Set<string>();

  constructor(
    readonly file: string,
    readonly parsed: ParsedConfig,
  ) {}

  readonly report: Report = (keyPath, message) => {
    const path = formatPath(keyPath);
    if (this.#muted.has(path)) return;
    this.#list.push(this.parsed.locate({ path, message }, keyPath));
  };

  /** A problem named at `keyPath` but placed at the line of `at` (a key that is missing is not in the file). */
  reportAt(keyPath: readonly PropertyKey[], at: readonly PropertyKey[], message: string): void {
    const path = formatPath(keyPath);
    if (this.#muted.has(path)) return;
    this.#list.push(this.parsed.locate({ path, message }, at));
  }

  /** From now on, problems at exactly these key paths are not reported (one was, already). */
  mute(keyPaths: ReadonlyArray<readonly PropertyKey[]>): void {
    for (const keyPath of keyPaths) this.#muted.add(formatPath(keyPath));
  }

  get count(): number {
    return this.#list.length;
  }

  /** Throws every problem found so far, if any. */
  throwIfAny(): void {
    if (this.#list.length > 0) throw new ConfigError(this.file, [...this.#list]);
  }

  error(): ConfigError {
    return new ConfigError(this.file, [...this.#list]);
  }
}
