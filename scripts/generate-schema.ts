/**
 * npm run schema: writes config/tokengate.schema.json and docs/configuration.md from the zod config
 * schema. `--check` writes nothing and exits 1 when a committed file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFIG_JSON_SCHEMA_FILE, renderConfigJsonSchema } from '../src/config/json-schema.js';
import { CONFIG_DOC_FILE, renderConfigDoc } from './config-doc.js';

const outputs: [string, string][] = [
  [CONFIG_JSON_SCHEMA_FILE, renderConfigJsonSchema()],
  [CONFIG_DOC_FILE, renderConfigDoc()],
];

for (const [name, text] of outputs) {
  const file = fileURLToPath(new URL(`../${name}`, import.meta.url));
  if (process.argv.includes('--check')) {
    let committed = '';
    try {
      committed = readFileSync(file, 'utf8');
    } catch {
      // A missing file is stale too.
    }
    if (committed !== text) {
      process.stderr.write(`${name} is stale: run npm run schema and commit it\n`);
      process.exitCode = 1;
    } else process.stdout.write(`${name} is up to date\n`);
  } else {
    writeFileSync(file, text);
    process.stdout.write(`wrote ${name}\n`);
  }
}
