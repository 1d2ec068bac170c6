/**
 * Follows the running config's `{ file: }` secrets (config/watched-file.ts): when one changes, the
 * gateway reloads (the same all-or-nothing pipeline as a config change) so that the new value is
 * checked and used, then logs `secret_reloaded` naming the secret, never its value. Several
 * secrets changed together (a Kubernetes Secret swaps all its keys at once) make one reload.
 */
import type { Logger } from 'pino';
import { WatchedFile, type WatchedFileOptions } from './watched-file.js';

/** Secrets that changed within this long of each other are applied by one reload. */
const GATHER_MS = 50;

export interface SecretFileWatchOptions {
  log: Logger;
  /** Applies the changed files (a reload); resolves true when the new values are in use. */
  apply(): Promise<boolean>;
  /** Poll and settle times of the file watches (tests shorten them). */
  timing?: Pick<WatchedFileOptions, 'pollMs' | 'settleMs'>;
}

export class SecretFileWatch {
  /** One watch per file, with the secret names that read it. */
  readonly #files = new Map<string, { names: string[]; watch: Promise<WatchedFile | undefined> }>();
  readonly #changed = new Set<string>();
  #gather: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #options: SecretFileWatchOptions;

  constructor(options: SecretFileWatchOptions) {
    this.#options = options;
  }

  /**
   * Follows exactly these files (secret name → absolute path): the running config's. Resolves once
   * every new file is followed (read once, watched); it never rejects.
   */
  async update(secretFiles: ReadonlyMap<string, string>): Promise<void> {
    if (this.#closed) return;
    const byPath = new Map<string, string[]>();
    for (const [name, path] of secretFiles) byPath.set(path, [...(byPath.get(path) ?? []), name]);
    for (const [path, entry] of this.#files) {
      if (byPath.has(path)) continue;
      this.#files.delete(path);
      void entry.watch.then((watch) => watch?.close());
    }
    for (const [path, names] of byPath) {
      const entry = this.#files.get(path);
      if (entry !== undefined) entry.names = names;
      else this.#files.set(path, { names, watch: this.#open(path) });
    }
    await Promise.all([...this.#files.values()].map((entry) => entry.watch));
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#gather);
    for (const entry of this.#files.values()) void entry.watch.then((watch) => watch?.close());
    this.#files.clear();
  }

  async #open(path: string): Promise<WatchedFile | undefined> {
    const { log, timing } = this.#options;
    try {
      const watch = await WatchedFile.open(path, {
        ...timing,
        onChange: () => this.#onChange(path),
        onError: (reason) =>
          log.warn(
            { event: 'secret_watch_error', secrets: this.#files.get(path)?.names, file: path, reason },
            `cannot read the secret file ${path}: ${reason}; the running value stays in use`,
          ),
      });
      if (this.#closed || this.#files.get(path) === undefined) watch.close();
      return watch;
    } catch (error) {
      // The config was just built from this file: it went away since. A reload will say so.
      log.warn(
        { event: 'secret_watch_error', secrets: this.#files.get(path)?.names, file: path, reason: (error as Error).message },
        `cannot follow the secret file ${path}: ${(error as Error).message}`,
      );
      return undefined;
    }
  }

  #onChange(path: string): void {
    for (const name of this.#files.get(path)?.names ?? []) this.#changed.add(name);
    clearTimeout(this.#gather);
    this.#gather = setTimeout(() => void this.#applyChanged(), GATHER_MS);
  }

  async #applyChanged(): Promise<void> {
    const names = [...this.#changed];
    this.#changed.clear();
    if (names.length === 0 || this.#closed) return;
    const applied = await this.#options.apply();
    // A refused reload has logged its problems (a half-written key, say); the old values serve on.
    if (!applied) return;
    for (const secret of names)
      this.#options.log.info({ event: 'secret_reloaded', secret }, `secret ${secret} changed on disk; the new value is in use`);
  }
}
