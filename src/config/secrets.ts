/**
 * Stage 4: every secret the config defines, resolved to its value: from the environment, from a
 * file (read as src/config/read.ts reads: regular files only, within a time limit), or inline.
 */
import { dirname, resolve } from 'node:path';
import { readRegularFile } from './read.js';
import type { Report } from './report.js';
import type { RawConfig } from './schema.js';
import { Secret } from './secret.js';

export async function resolveSecrets(
  secrets: RawConfig['secrets'],
  file: string,
  env: NodeJS.ProcessEnv,
  report: Report,
): Promise<Map<string, Secret>> {
  const out = new Map<string, Secret>();
  const dir = dirname(resolve(file));
  // Files are read concurrently: the time limit bounds each one, and so the whole stage.
  await Promise.all(
    Object.entries(secrets).map(async ([name, def]) => {
      const keyPath = ['secrets', name];
      if ('env' in def) {
        const value = env[def.env];
        if (value === undefined) report([...keyPath, 'env'], `environment variable ${def.env} is not set`);
        else if (value === '') report([...keyPath, 'env'], `environment variable ${def.env} is empty`);
        else out.set(name, new Secret(name, value));
      } else if ('file' in def) {
        let text: string;
        try {
          text = (await readRegularFile(resolve(dir, def.file))).replace(/\r?\n$/, '');
        } catch (error) {
          report([...keyPath, 'file'], `cannot read ${def.file}: ${(error as Error).message}`);
          return;
        }
        // An empty secret is never right, and a file caught between truncate and write looks like one.
        if (text === '') report([...keyPath, 'file'], `${def.file} is empty`);
        else out.set(name, new Secret(name, text));
      } else {
        out.set(name, new Secret(name, def.value));
      }
    }),
  );
  return out;
}
