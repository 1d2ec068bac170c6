/**
 * Follows the config file while serving and asks for a reload when it changes. The folder is
 * watched, as editors and Kubernetes ConfigMaps replace the file rather than write it; when the
 * folder itself is deleted (or replaced), the watch is armed again on the folder that takes its place.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from '../observability/log.js';

const WATCH_DEBOUNCE_MS = 200;
/**
 * How often the watcher checks that the config folder it watches is still the one on disk: a
 * watch on a deleted folder ends silently, and one on a recreated folder sees nothing.
 */
const WATCH_CHECK_INTERVAL_MS = 1_000;

export interface ConfigWatcherOptions {
  readonly configFile: string;
  readonly log: Logger;
  /** Called (debounced) when the file may have changed; a reload never throws. */
  readonly reload: () => Promise<unknown>;
}

export class ConfigWatcher {
  readonly #file: string;
  readonly #dir: string;
  readonly #log: Logger;
  readonly #reload: () => Promise<unknown>;
  #watcher: FSWatcher | undefined;
  #check: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  /** The identity (device and inode) of the folder the watch is armed on. */
  #watched: string | undefined;
  /** The last reason the watch could not be armed: logged once, not every second. */
  #lastProblem: string | undefined;
  #closed = false;

  constructor({ configFile, log, reload }: ConfigWatcherOptions) {
    this.#file = resolve(configFile);
    this.#dir = dirname(this.#file);
    this.#log = log;
    this.#reload = reload;
  }

  /** Arms the watch (or logs that it will keep trying) and starts checking the folder's identity. */
  async start(): Promise<void> {
    if (!(await this.#arm())) {
      this.#log.warn({ event: 'config_watch_lost', dir: this.#dir }, `cannot watch the config folder ${this.#dir} yet; retrying`);
    }
    let checking = false;
    this.#check = setInterval(() => {
      if (checking) return;
      checking = true;
      void this.#checkFolder().finally(() => (checking = false));
    }, WATCH_CHECK_INTERVAL_MS);
    this.#check.unref();
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#check);
  }

  async #identity(): Promise<string | undefined> {
    try {
      const info = await stat(this.#dir);
      return info.isDirectory() ? `${info.dev}:${info.ino}` : undefined;
    } catch {
      return undefined;
    }
  }

  #disarm(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#watched = undefined;
  }

  async #arm(): Promise<boolean> {
    const id = await this.#identity();
    if (id === undefined || this.#closed) return false;
    const dir = this.#dir;
    try {
      const watcher = watch(dir, (_event, name) => {
        if (name !== null && name !== basename(this.#file) && name !== '..data') return;
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.#reload(), WATCH_DEBOUNCE_MS);
      });
      watcher.on('error', (error) => {
        this.#log.warn({ event: 'config_watch_error', err: error }, 'the config folder watch failed; arming it again');
        if (this.#watcher === watcher) this.#disarm();
      });
      this.#watcher = watcher;
      this.#watched = id;
      this.#lastProblem = undefined;
      return true;
    } catch (error) {
      const problem = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      if (problem !== this.#lastProblem) {
        this.#log.warn({ event: 'config_watch_error', dir, err: error }, `cannot watch the config folder ${dir}: ${problem}`);
        this.#lastProblem = problem;
      }
      return false;
    }
  }

  async #checkFolder(): Promise<void> {
    const id = await this.#identity();
    if (this.#closed || (id !== undefined && id === this.#watched)) return;
    const dir = this.#dir;
    if (this.#watched !== undefined) {
      this.#disarm();
      this.#log.warn({ event: 'config_watch_lost', dir }, `the config folder ${dir} is gone or was replaced; watching for it`);
    }
    if (await this.#arm()) {
      this.#log.info({ event: 'config_watch_rearmed', dir }, `watching the config folder ${dir} again`);
      // The file may have changed while nobody watched.
      await this.#reload();
    }
  }
}
