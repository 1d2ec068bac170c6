/**
 * The config layer's stages in order: read → parse (with positions) → substitute → validate (zod)
 * → resolve secrets → semantic checks. The result is a CheckedConfig; src/runtime/build.ts adds
 * the last stage, building the runtime. Every problem is collected and reported at once, each with the file, the key
 * path and, where the YAML tells us, line and column.
 */
import { resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { parseYaml } from './parse.js';
import { readRegularFile } from './read.js';
import { Problems } from './report.js';
import { resolveSecrets } from './secrets.js';
import { checkSemantics } from './semantic.js';
import { substituteVariables } from './substitute.js';
import type { CheckedConfig, LoadOptions } from './types.js';
import { validateSchema } from './validate.js';

export { isLoopbackHost } from './checks.js';
export type { AccessPolicy, CheckedConfig, Config, Connection, ConnectionSettings, LoadOptions, Route } from './types.js';

/** A checked config, and the collector that places later (compile-stage) problems in the same file. */
export interface Checked {
  readonly config: CheckedConfig;
  readonly problems: Problems;
}

/** Reads the config file (regular files only, within a time limit) and checks it. */
export async function checkConfigFile(file: string, options: LoadOptions = {}): Promise<Checked> {
  let text: string;
  try {
    text = await readRegularFile(resolve(file));
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the config file: ${(error as Error).message}` }]);
  }
  return checkConfigText(text, file, options);
}

/** Checks config text; `file` names it in problems and anchors relative secret files. */
export async function checkConfigText(text: string, file: string, options: LoadOptions = {}): Promise<Checked> {
  const env = options.env ?? process.env;
  const parsed = parseYaml(text, file);
  const problems = new Problems(file, parsed);
  const substituted = substituteVariables(parsed.data, env, problems.report);
  // A value that kept its `${VAR}` has been reported once, as that variable's problem.
  problems.mute(substituted.unresolved);
  const validated = validateSchema(substituted.value as Record<string, unknown>, problems);
  const secrets = await resolveSecrets(validated.raw.secrets, file, env, problems.report);
  return { config: checkSemantics(validated, secrets, problems), problems };
}
