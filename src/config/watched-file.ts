/**
 * A file whose content is followed while it changes, without a reload: a `{ file: }` secret, a
 * client-assertion file. Kubernetes updates a mounted Secret or ConfigMap by swapping the `..data`
 * symlink in its folder, editors write a new file and rename it, scripts write in place. A watch on
 * the file itself stays on the old inode after a swap or a rename, so the containing folder is
 * watched; the file's identity (device, inode, size, mtime, through symlinks) is also polled, for
 * a symlink into another folder or a file system without change events. Only content that differs
 * from the last read counts as a change. Reads go through readRegularFile (regular files only,
 * within a time limit), and nothing here ever logs the content.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';
import { readRegularFile } from './read.js';

/** Events in the folder come in bursts (a symlink swap is a create, a rename and a delete): act once they settle. */
export const WATCH_SETTLE_MS = 100;
/** How often the file's identity is checked when no change event came. */
export const WATCH_POLL_MS = 2_000;

export interface WatchedFileOptions {
  /** The content changed (it differs from the last read); `text` is the new content. */
  onChange(text: string): void;
  /** The file could not be read (gone, not a regular file, too slow); told once per distinct reason. */
  onError?(reason: string): void;
  /** Defaults: WATCH_POLL_MS, WATCH_SETTLE_MS (tests shorten them). */
  pollMs?: number;
  settleMs?: number;
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

export class WatchedFile {
  readonly path: string;
  #text: string;
  #hash: string;
  #identity: string | undefined;
  #lastError: string | undefined;
  #watcher: FSWatcher | undefined;
  #settle: NodeJS.Timeout | undefined;
  readonly #poll: NodeJS.Timeout;
  #checking: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #options: WatchedFileOptions;

  private constructor(path: string, text: string, identity: string | undefined, options: WatchedFileOptions) {
    this.path = path;
    this.#text = text;
    this.#hash = digest(text);
    this.#identity = identity;
    this.#options = options;
    this.#arm();
    this.#poll = setInterval(() => void this.#pollOnce(), options.pollMs ?? WATCH_POLL_MS);
    this.#poll.unref();
  }

  /** Reads the file (a FileReadProblem when it cannot) and starts following it. */
  static async open(path: string, options: WatchedFileOptions): Promise<WatchedFile> {
    const absolute = resolve(path);
    const identity = await identityOf(absolute);
    const text = await readRegularFile(absolute);
    return new WatchedFile(absolute, text, identity, options);
  }

  /** The content as last read. */
  get text(): string {
    return this.#text;
  }

  /**
   * The current content: the file's identity is checked first (one stat), and the file is read
   * again when it changed, so a caller about to use the value never waits for the watch to fire.
   */
  async current(): Promise<string> {
    if ((await identityOf(this.path)) !== this.#identity) await this.check();
    return this.#text;
  }

  /** Reads the file again now and reports a change; concurrent calls share one read. */
  check(): Promise<void> {
    if (this.#checking !== undefined) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = this.#read().finally(() => {
      this.#checking = undefined;
      if (this.#again && !this.#closed) {
        this.#again = false;
        void this.check();
      }
    });
    return this.#checking;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#poll);
    clearTimeout(this.#settle);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  async #read(): Promise<void> {
    const identity = await identityOf(this.path);
    let text: string;
    try {
      text = await readRegularFile(this.path);
    } catch (error) {
      const reason = (error as Error).message;
      if (reason !== this.#lastError && !this.#closed) this.#options.onError?.(reason);
      this.#lastError = reason;
      return;
    }
    this.#lastError = undefined;
    this.#identity = identity;
    const hash = digest(text);
    if (hash === this.#hash || this.#closed) return;
    this.#text = text;
    this.#hash = hash;
    this.#options.onChange(text);
  }

  async #pollOnce(): Promise<void> {
    if (this.#closed) return;
    // A watch lost with its folder (deleted and made again) is armed again here.
    if (this.#watcher === undefined) this.#arm();
    if ((await identityOf(this.path)) !== this.#identity || this.#lastError !== undefined) await this.check();
  }

  #arm(): void {
    const name = basename(this.path);
    try {
      const watcher = watch(dirname(this.path), (_event, changed) => {
        // `..data` is Kubernetes' symlink swap; null: the platform did not say which entry.
        if (changed !== null && changed !== name && !changed.startsWith('..')) return;
        clearTimeout(this.#settle);
        this.#settle = setTimeout(() => void this.check(), this.#options.settleMs ?? WATCH_SETTLE_MS);
      });
      watcher.on('error', () => {
        watcher.close();
        if (this.#watcher === watcher) this.#watcher = undefined;
      });
      watcher.unref();
      this.#watcher = watcher;
    } catch {
      // The folder is not there (yet): the poll arms the watch once it is.
      this.#watcher = undefined;
    }
  }
}

/** What changes when a file is replaced or written: undefined when it cannot be stat'ed. */
export async function identityOf(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
  } catch {
    return undefined;
  }
}
