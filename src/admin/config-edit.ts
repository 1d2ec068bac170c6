/**
 * Changes to the YAML file from the admin API. The file stays the single source of truth: an
 * edit is applied to the parsed document (comments, order and layout kept), the whole candidate
 * is validated as `validate` would, written atomically, and applied by the gateway's reload
 * before the answer returns. A refused edit leaves the file byte for byte as it was.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, renameSync, statSync, unlinkSync, writeFileSync, type BigIntStats } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { isCollection, isMap, isScalar, parseDocument, visit, type Document } from 'yaml';
import { ConfigError, type ConfigProblem } from '../config/errors.js';
import { FileReadProblem, readRegularFile } from '../config/read.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../observability/log.js';
import { buildConfigText } from '../runtime/build.js';
import { AdminError } from '../errors/admin.js';

export type Validation = { ok: true; config: Config } | { ok: false; problems: readonly ConfigProblem[] };

/**
 * The one validation call for candidate config text, the same pipeline `validate` and reload
 * run. Kept behind this function so that a new pipeline is a one-line change here.
 */
export async function validateConfigText(text: string, file: string, env: NodeJS.ProcessEnv): Promise<Validation> {
  try {
    return { ok: true, config: (await buildConfigText(text, file, { env })).config };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, problems: error.problems };
    throw error;
  }
}

/** Identifies the file's content: an edit names the version it was based on. */
export function configVersion(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url').slice(0, 22);
}

export interface ConfigFileState {
  text: string;
  version: string;
  /** The file as data, before `${VAR}` substitution and defaults: exactly what it says. */
  data: Record<string, unknown>;
  readOnly: boolean;
  /** The file's identity and times, taken before its text was read: see sameFile(). */
  stamp: BigIntStats;
}

/** What an edit did, for the `config_edit` log line. */
export interface EditRecord {
  action: 'connection_create' | 'connection_replace' | 'connection_delete' | 'route_auth_replace';
  connection?: string;
  route?: string;
}

export interface ConfigEditorOptions {
  file: string;
  env: NodeJS.ProcessEnv;
  /** The gateway's normal reload; an edit takes effect through it. */
  reload: () => Promise<{ ok: boolean; error?: ConfigError }>;
  log: Logger;
}

export class ConfigEditor {
  readonly file: string;
  /** Edits run one after another (the pipeline reads files asynchronously): see edit(). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ConfigEditorOptions) {
    this.file = resolve(options.file);
  }

  /**
   * The file as it is now. Read as reloads read it (src/config/read.ts): asynchronously, regular
   * files only, within a time limit, so a FIFO or a stalled mount at the config path never blocks
   * the listeners; such a file is a CONFIG_INVALID answer instead.
   */
  async read(): Promise<ConfigFileState> {
    let text: string;
    let stamp: BigIntStats;
    try {
      stamp = await stat(this.file, { bigint: true });
      text = await readRegularFile(this.file);
    } catch (error) {
      const reason = error instanceof FileReadProblem ? error.reason : ((error as NodeJS.ErrnoException).code ?? 'unreadable');
      throw new AdminError('CONFIG_INVALID', `cannot read the config file: ${reason}`, {
        problems: [{ path: '', message: `cannot read the config file: ${reason}` }],
      });
    }
    const doc = parseDocument(text, { uniqueKeys: false });
    const data = doc.errors.length === 0 ? plainData(doc) : undefined;
    return {
      text,
      version: configVersion(text),
      data: typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {},
      readOnly: !(await writable(this.file)),
      stamp,
    };
  }

  /**
   * Applies `change` to the document and commits it. Edits are queued, so two can never
   * interleave in this process: the second one reads what the first one wrote, and a version
   * check turns an edit based on an older read into CONFIG_CHANGED.
   */
  edit(version: unknown, change: (doc: Document, data: Record<string, unknown>) => EditRecord): Promise<{ version: string }> {
    const run = this.#queue.then(() => this.#edit(version, change));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #edit(version: unknown, change: (doc: Document, data: Record<string, unknown>) => EditRecord): Promise<{ version: string }> {
    if (typeof version !== 'string' || version === '')
      throw new AdminError('CONFIG_INVALID', 'say which version of the file the change is based on', {
        problems: [{ path: 'version', message: 'required: the version from GET /connections/KEY or GET /routes' }],
      });
    const before = await this.read();
    if (before.readOnly) throw new AdminError('CONFIG_READ_ONLY', `${basename(this.file)} is read-only: editing is off`);
    if (before.version !== version)
      throw new AdminError('CONFIG_CHANGED', 'the config file changed since it was read; reload it and apply the change again', {
        version: before.version,
      });
    const doc = parseDocument(before.text);
    if (doc.errors.length > 0)
      throw new AdminError('CONFIG_INVALID', 'the config file on disk cannot be parsed; fix it first', {
        problems: doc.errors.map((error) => ({ path: '', message: error.message.split('\n')[0] ?? error.code })),
      });
    const record = change(doc, before.data);
    const candidate = printDocument(doc, before.text);
    const verdict = await validateConfigText(candidate, this.options.file, this.options.env);
    if (!verdict.ok) throw new AdminError('CONFIG_INVALID', 'the change was not applied', { problems: verdict.problems });
    // Compare and swap: a hand edit (or another process's) made while the candidate was validated
    // must never be overwritten. The text is compared after the await; the file's identity and
    // times are compared again synchronously, with nothing in between, right before the rename.
    const now = await this.read();
    if (now.version !== before.version || !sameFile(statSync(this.file, { bigint: true }), now.stamp))
      throw new AdminError('CONFIG_CHANGED', 'the config file changed while the change was checked; reload it and apply the change again', {
        version: now.version,
      });
    replaceFile(this.file, candidate);
    const reloaded = await this.options.reload();
    if (!reloaded.ok) {
      // Something outside the text changed under us (a secret file, an environment variable): put
      // the old file back, unless someone has changed it again since (theirs is kept).
      const current = await this.read().catch(() => undefined);
      if (current?.version === configVersion(candidate)) replaceFile(this.file, before.text);
      await this.options.reload();
      throw new AdminError('CONFIG_INVALID', 'the change was not applied', { problems: reloaded.error?.problems ?? [] });
    }
    this.options.log.info({ event: 'config_edit', ...record, file: this.options.file }, `config edited: ${record.action}`);
    return { version: configVersion(candidate) };
  }
}

/**
 * The document as plain data, or undefined when it cannot be: yaml throws for an alias without an
 * anchor, quoting the alias, which may be an unquoted secret that starts with `*`. The message
 * would reach the admin error log; the pipeline reports such a file by position instead.
 */
function plainData(doc: Document): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Sets `value` at `path`, keeping what is unchanged untouched: when both sides are mappings,
 * only the keys that differ are replaced (their comments and flow/block style stay) and the keys
 * the value no longer has are removed.
 */
export function mergeInto(doc: Document, path: readonly (string | number)[], value: Record<string, unknown>): void {
  const node = doc.getIn(path, true);
  if (!isMap(node)) {
    // `connections: {}` would otherwise take the new entry in flow style, all on one line.
    const parent = doc.getIn(path.slice(0, -1), true);
    if (isCollection(parent) && parent.flow === true && parent.items.length === 0) parent.flow = false;
    doc.setIn(path, doc.createNode(value));
    return;
  }
  const current = node.toJSON() as Record<string, unknown>;
  for (const [key, item] of Object.entries(value)) {
    if (JSON.stringify(current[key]) === JSON.stringify(item)) continue;
    // A nested mapping (clientSecret: { secret: x }) is merged too, so it keeps its own style.
    if (isPlainObject(item) && isMap(node.get(key, true))) mergeInto(doc, [...path, key], item);
    else node.set(key, doc.createNode(item));
  }
  for (const key of Object.keys(current)) if (!Object.hasOwn(value, key)) node.delete(key);
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The edited document as text. Every value must read back exactly as the document holds it: an
 * earlier multi-line value of another entry must not change because this one was saved. When the
 * comment restoration would change a value it is left out; when even plain printing would, the
 * edit is refused rather than written.
 */
function printDocument(doc: Document, original: string): string {
  // lineWidth 0: never fold long strings that the file had on one line.
  const printed = doc.toString({ lineWidth: 0 });
  const expected = plainData(doc);
  const readsBack = (text: string) => {
    const reparsed = parseDocument(text, { uniqueKeys: false });
    return reparsed.errors.length === 0 && isDeepStrictEqual(plainData(reparsed), expected);
  };
  const restored = restoreKeyComments(printed, original);
  if (readsBack(restored)) return restored;
  if (readsBack(printed)) return printed;
  throw new AdminError('CONFIG_INVALID', 'the file cannot be rewritten without changing another value in it; make this change by hand', {
    problems: [{ path: '', message: 'printing the edited file would change a value the edit did not touch' }],
  });
}

/**
 * The yaml package moves a comment written after a key whose value is a block (`broken: # why`)
 * onto the next line when it prints the document. Put each such comment back where the file had
 * it: only where the original has exactly that line, and never inside a value (a block scalar's
 * lines `note:` and `# text` are text, not a key and its comment).
 */
export function restoreKeyComments(candidate: string, original: string): string {
  const originalLines = new Set(original.split('\n'));
  const values: Array<[number, number]> = [];
  visit(parseDocument(candidate, { uniqueKeys: false }), {
    Scalar(_key, node) {
      if (isScalar(node) && node.range != null) values.push([node.range[0], node.range[1]]);
    },
  });
  return candidate.replace(
    /^([ \t]*(?:- )?[^\s#][^\n]*:)\n[ \t]*(#[^\n]*)$/gm,
    (whole, keyLine: string, comment: string, offset: number) => {
      const lineEnd = offset + keyLine.length;
      if (values.some(([start, end]) => start < lineEnd && lineEnd < end)) return whole;
      return originalLines.has(`${keyLine} ${comment}`) ? `${keyLine} ${comment}` : whole;
    },
  );
}

/**
 * `${VAR}` strings are substituted from the gateway's environment when the file loads; from the
 * console they could read any environment variable back through a displayed field. A string with
 * `${` is accepted only where the file already has exactly that string.
 */
export function variableProblems(value: unknown, existing: unknown, path: string): ConfigProblem[] {
  if (typeof value === 'string') {
    return value.includes('${') && value !== existing
      ? [{ path, message: '${VAR} substitution cannot be added from the console; edit the file for that' }]
      : [];
  }
  if (typeof value !== 'object' || value === null) return [];
  const problems: ConfigProblem[] = [];
  for (const [key, item] of Object.entries(value)) {
    const before = typeof existing === 'object' && existing !== null ? (existing as Record<string, unknown>)[key] : undefined;
    problems.push(...variableProblems(item, before, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`));
  }
  return problems;
}

/** Root bypasses permission checks, so the file's own write bits count too. */
async function writable(file: string): Promise<boolean> {
  try {
    await access(file, constants.W_OK);
    await access(dirname(file), constants.W_OK);
    return ((await stat(file)).mode & 0o222) !== 0;
  } catch {
    return false;
  }
}

/** The same file, unchanged: same inode, size and modification and change times (nanoseconds). */
function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** Temporary file in the same folder, then rename: readers see the old file or the new one, never half of one. */
function replaceFile(file: string, text: string): void {
  const temporary = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(temporary, text, { mode: statSync(file).mode & 0o777, flag: 'wx' });
    renameSync(temporary, file);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // Never created, or already renamed.
    }
    throw error;
  }
}
