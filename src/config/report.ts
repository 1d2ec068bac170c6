/** How every stage reports a problem: at a key path, collected so that all of them are shown at once. */
import { ConfigError, formatPath, type ConfigProblem } from './errors.js';
import type { ParsedConfig } from './parse.js';

export type Report = (keyPath: readonly PropertyKey[], message: string) => void;

/** Collects the problems of one config file, each placed at its line and column. */
export class Problems {
  readonly #list: ConfigProblem[] = [];

  constructor(
    readonly file: string,
    readonly parsed: ParsedConfig,
  ) {}

  readonly report: Report = (keyPath, message) => {
    this.#list.push(this.parsed.locate({ path: formatPath(keyPath), message }, keyPath));
  };

  /** A problem named at `keyPath` but placed at the line of `at` (a key that is missing is not in the file). */
  reportAt(keyPath: readonly PropertyKey[], at: readonly PropertyKey[], message: string): void {
    this.#list.push(this.parsed.locate({ path: formatPath(keyPath), message }, at));
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
