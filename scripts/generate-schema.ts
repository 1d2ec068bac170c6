/**
 * npm run schema: writes config/tokengate.schema.json from the zod config schema.
 * `--check` writes nothing and exits 1 when the committed file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFIG_JSON_SCHEMA_FILE, renderConfigJsonSchema } from '../src/config/json-schema.js';

const file = fileURLToPath(new URL(`../${CONFIG_JSON_SCHEMA_FILE}`, import.meta.url));
const text = renderConfigJsonSchema();

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(file, 'utf8');
  } catch {
    // A missing file is stale too.
  }
  if (committed !== text) {
    process.stderr.write(`${CONFIG_JSON_SCHEMA_FILE} is stale: run npm run schema and commit it\n`);
    process.exitCode = 1;
  } else process.stdout.write(`${CONFIG_JSON_SCHEMA_FILE} is up to date\n`);
} else {
  writeFileSync(file, text);
  process.stdout.write(`wrote ${CONFIG_JSON_SCHEMA_FILE}\n`);
}
