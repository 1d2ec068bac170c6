/**
 * Helpers for the deploy/ tests: a small kustomize resolver (the subset deploy/kubernetes uses, for
 * machines without kubectl; where kubectl is installed the tests check it renders the same), and
 * `validate --strict` of a container config whose secret files live in a temp folder.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Obj = { [key: string]: Json };

export function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every document of a YAML stream, as plain objects (empty documents dropped). */
export function parseStream(text: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('; '));
    const value: unknown = doc.toJS();
    if (isObj(value)) out.push(value);
  }
  return out;
}

/** A path inside an object: `at(o, 'spec', 'template')`, undefined when any step is missing. */
export function at(value: Json | undefined, ...path: (string | number)[]): Json | undefined {
  let current: Json | undefined = value;
  for (const step of path) {
    if (typeof step === 'number') current = Array.isArray(current) ? current[step] : undefined;
    else current = isObj(current) ? current[step] : undefined;
  }
  return current;
}

/** A value as text: strings and numbers as they are, anything else as JSON. */
export function str(value: Json | undefined): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? `${value}` : JSON.stringify(value ?? null);
}

function merge(base: Json, patch: Json): Json {
  if (!isObj(base) || !isObj(patch)) return patch;
  const out: Obj = { ...base };
  for (const [key, value] of Object.entries(patch)) out[key] = key in out ? merge(out[key] as Json, value) : value;
  return out;
}

function strings(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * Renders a kustomization folder: resources (files and folders), configMapGenerator (files,
 * disableNameSuffixHash), labels (pairs, on metadata only), namespace, images, patches (a file holding
 * one object, merged into the resource of its kind and name; lists replaced). Anything else it
 * meets is an error, so a kustomization that grows past this subset fails loudly.
 */
export function renderKustomization(folder: string): Obj[] {
  const k = parse(readFileSync(join(folder, 'kustomization.yaml'), 'utf8')) as Obj;
  const known = new Set([
    'apiVersion',
    'kind',
    'resources',
    'configMapGenerator',
    'generatorOptions',
    'labels',
    'namespace',
    'images',
    'patches',
  ]);
  for (const key of Object.keys(k))
    if (!known.has(key)) throw new Error(`${folder}: kustomization key ${key} is not supported by this resolver`);
  let objects: Obj[] = [];
  for (const resource of strings(k.resources)) {
    const path = join(folder, resource);
    objects.push(...(statSync(path).isDirectory() ? renderKustomization(path) : parseStream(readFileSync(path, 'utf8'))));
  }
  const generated: Obj[] = [];
  for (const gen of Array.isArray(k.configMapGenerator) ? k.configMapGenerator : []) {
    if (at(k, 'generatorOptions', 'disableNameSuffixHash') !== true)
      throw new Error(`${folder}: only disableNameSuffixHash generators are supported`);
    const data: Obj = {};
    for (const file of strings(at(gen, 'files'))) data[basename(file)] = readFileSync(join(folder, file), 'utf8');
    generated.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: at(gen, 'name') ?? null }, data });
  }
  objects = [...generated, ...objects];
  for (const patch of Array.isArray(k.patches) ? k.patches : []) {
    const path = at(patch, 'path');
    if (typeof path !== 'string') throw new Error(`${folder}: only patches with a path are supported`);
    const [p] = parseStream(readFileSync(join(folder, path), 'utf8'));
    if (p === undefined) throw new Error(`${folder}: patch ${path} is empty`);
    const index = objects.findIndex((o) => o.kind === p.kind && at(o, 'metadata', 'name') === at(p, 'metadata', 'name'));
    if (index < 0) throw new Error(`${folder}: patch ${path} matches no resource`);
    objects[index] = merge(objects[index] as Obj, p) as Obj;
  }
  const pairs: Obj = {};
  for (const label of Array.isArray(k.labels) ? k.labels : []) Object.assign(pairs, at(label, 'pairs'));
  for (const o of objects) {
    if (Object.keys(pairs).length > 0) {
      const metadata = (o.metadata ?? {}) as Obj;
      metadata.labels = { ...(metadata.labels as Obj | undefined), ...pairs };
      o.metadata = metadata; // not the pod template's, nor selectors (includeTemplates/includeSelectors false)
    }
    if (typeof k.namespace === 'string' && o.kind !== 'Namespace') (o.metadata as Obj).namespace = k.namespace;
    const containers = at(o, 'spec', 'template', 'spec', 'containers');
    for (const image of Array.isArray(k.images) ? k.images : []) {
      for (const c of Array.isArray(containers) ? containers : []) {
        if (!isObj(c) || typeof c.image !== 'string') continue;
        const [name, tag] = c.image.split(':');
        if (name !== at(image, 'name')) continue;
        c.image = `${str(at(image, 'newName') ?? name ?? null)}:${str(at(image, 'newTag') ?? tag ?? null)}`;
      }
    }
  }
  return objects;
}

/**
 * `node dist/cli.js validate --strict` of `config` (YAML text) in a temp folder, with each of its
 * `{ file: }` secrets written there with a random value: relative ones beside the config, absolute
 * ones under `secretsDir` (the folder the container mounts) moved into the temp folder.
 */
export function validateContainerConfig(config: string, secretsDir?: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-deploy-'));
  try {
    const moved = join(dir, 'mounted-secrets');
    const text = secretsDir === undefined ? config : config.split(secretsDir).join(moved);
    for (const file of secretFiles(text)) {
      const path = isAbsolute(file) ? file : join(dir, file);
      if (!path.startsWith(dir)) throw new Error(`secret file ${file} is outside ${secretsDir ?? 'the config folder'}`);
      mkdirSync(dirname(path), { recursive: true });
      // 32 random bytes in base64: a valid cache key, client secret and API key alike.
      writeFileSync(path, `${randomBytes(32).toString('base64')}\n`);
    }
    const configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, text);
    const run = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'validate', '--strict', '--config', configFile], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `{ file: }` paths of a config's `secrets:` section. */
export function secretFiles(config: string): string[] {
  const secrets = at(parse(config) as Json, 'secrets');
  return isObj(secrets) ? Object.values(secrets).flatMap((s) => (isObj(s) && typeof s.file === 'string' ? [s.file] : [])) : [];
}
