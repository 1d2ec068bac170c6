/**
 * Stage 1: YAML text → plain data, keeping the document so that every later problem can be placed
 * at its line and column.
 */
import { LineCounter, parseDocument, visit, type Alias, type Document } from 'yaml';
import { ConfigError, formatPath, type ConfigProblem } from './errors.js';

export interface ParsedConfig {
  /** The top-level mapping as plain JavaScript values. */
  readonly data: Record<string, unknown>;
  /** Adds the line and column of the deepest node of `keyPath` that exists in the document. */
  locate(problem: Omit<ConfigProblem, 'line' | 'column'>, keyPath: readonly PropertyKey[]): ConfigProblem;
}

export function parseYaml(text: string, file: string): ParsedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((error) => {
        // prettyErrors: false leaves error.linePos unset; the offset is always there.
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return { path: '', message: `YAML syntax error: ${error.message.split('\n')[0] ?? error.code}`, line, column: col };
      }),
    );
  }
  const locate = (problem: Omit<ConfigProblem, 'line' | 'column'>, keyPath: readonly PropertyKey[]): ConfigProblem =>
    withPosition(problem, doc, lineCounter, keyPath);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (error) {
    throw new ConfigError(file, [unreadableYaml(error, doc, lineCounter)]);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError(file, [{ path: '', message: 'the config must be a YAML mapping (key: value) at the top level' }]);
  }
  const cycle = selfReference(data);
  if (cycle !== undefined) {
    throw new ConfigError(file, [
      locate({ path: formatPath(cycle), message: 'an alias refers to a node that contains it (the value would be infinite)' }, cycle),
    ]);
  }
  return { data: data as Record<string, unknown>, locate };
}

/**
 * yaml's message for an alias without an anchor quotes the alias, which may be an unquoted secret
 * that happens to start with `*`: say where it is instead.
 */
function unreadableYaml(error: unknown, doc: Document, lineCounter: LineCounter): ConfigProblem {
  let unresolved: Alias | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (node.resolve(doc) !== undefined) return undefined;
      unresolved = node;
      return visit.BREAK;
    },
  });
  if (unresolved?.range == null) return { path: '', message: `cannot read the YAML: ${(error as Error).message}` };
  const { line, col } = lineCounter.linePos(unresolved.range[0]);
  return { path: '', message: 'an alias (*name) has no anchor (&name) before it; quote a value that starts with *', line, column: col };
}

/**
 * The key path of a value that contains itself, or undefined. YAML allows `a: &x [*x]`; toJS turns
 * it into a cyclic object that every later walk would follow until the stack runs out.
 */
function selfReference(value: unknown, keyPath: PropertyKey[] = [], ancestors = new Set<object>()): PropertyKey[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (ancestors.has(value)) return keyPath;
  ancestors.add(value);
  for (const [key, item] of Object.entries(value)) {
    const found = selfReference(item, [...keyPath, Array.isArray(value) ? Number(key) : key], ancestors);
    if (found !== undefined) return found;
  }
  ancestors.delete(value);
  return undefined;
}

function withPosition(
  problem: Omit<ConfigProblem, 'line' | 'column'>,
  doc: Document,
  lineCounter: LineCounter,
  keyPath: readonly PropertyKey[],
): ConfigProblem {
  for (let length = keyPath.length; length >= 1; length--) {
    const node = doc.getIn(keyPath.slice(0, length) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node?.range !== undefined) {
      const pos = lineCounter.linePos(node.range[0]);
      return { ...problem, line: pos.line, column: pos.col };
    }
  }
  return problem;
}
