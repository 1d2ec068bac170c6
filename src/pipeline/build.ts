/**
 * The one pipeline from config text to a config ready to run (docs/reloads.md):
 * read → parse → substitute → validate → resolve secrets → semantic checks → compile.
 * `tokengate validate`, `serve` at start and every reload call buildConfig(); only the commit
 * (Gateway) differs. Whatever validate accepts has therefore already been built once.
 */
import { ConfigError } from '../config/errors.js';
import { checkConfigFile, checkConfigText } from '../config/load.js';
import type { Config, LoadOptions } from '../config/types.js';
import { compile, type CompileOptions, type Compiled } from './compile.js';

export type BuildOptions = LoadOptions & CompileOptions;

/** The config file through every stage but the commit; throws a ConfigError and nothing else. */
export async function buildConfig(file: string, options: BuildOptions = {}): Promise<Compiled> {
  return contained(file, async () => compile(await checkConfigFile(file, options), options));
}

/** As buildConfig, from text; `file` names it in problems and anchors relative secret files. */
export async function buildConfigText(text: string, file: string, options: BuildOptions = {}): Promise<Compiled> {
  return contained(file, async () => compile(await checkConfigText(text, file, options), options));
}

/** The compiled Config of a file (tests, `tokengate token`). */
export async function loadConfig(file: string, options: LoadOptions = {}): Promise<Config> {
  return (await buildConfig(file, options)).config;
}

/** The compiled Config of config text. */
export async function parseConfig(text: string, file: string, options: LoadOptions = {}): Promise<Config> {
  return (await buildConfigText(text, file, options)).config;
}

/**
 * Every stage reports what it finds as a ConfigError. Anything else thrown while building is a
 * bug, but still a config that cannot run: it is refused as one, never passed to the process.
 */
async function contained(file: string, build: () => Promise<Compiled>): Promise<Compiled> {
  try {
    return await build();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(file, [{ path: '', message: `cannot build the config: ${(error as Error).message ?? String(error)}` }]);
  }
}
