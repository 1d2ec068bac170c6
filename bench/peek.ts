/**
 * Micro-benchmark of the hot path's only synchronous dependency: TokenProvider.peek, with
 * 1 connection × 10 param sets cached (10 tokens) and with 1,000 connections × 10 param sets
 * (10,000 tokens), to show that a lookup costs the same. Tokens are put in the cache through the
 * SharedTokenStore seam, so no token endpoint is involved.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfigOnly } from '../src/runtime/build.js';
import { TokenProvider } from '../src/tokens/provider.js';
import { tokenKey, type CachedToken, type SharedTokenStore, type TokenKey } from '../src/tokens/types.js';

const CONNECTIONS = [1, 1_000] as const;
const PARAM_SETS = 10;
const WARMUP_LOOKUPS = 1_000_000;
const LOOKUPS = 5_000_000;
/** A prime stride visits every key in an order the CPU cannot prefetch. */
const STRIDE = 7_919;

export interface PeekResult {
  readonly connections: number;
  readonly cachedTokens: number;
  readonly lookups: number;
  readonly nsPerPeek: number;
  /** The same lookups in a plain Map (and a read of the token's expiry), for scale. */
  readonly nsPerMapGet: number;
}

function configYaml(connections: number): string {
  const lines = ['secrets:', '  bench-secret: { env: BENCH_CLIENT_SECRET }', 'connections:'];
  for (let i = 0; i < connections; i++) {
    lines.push(
      `  c${i}:`,
      `    clientId: client-${i}`,
      '    tokenUrl: http://127.0.0.1:9/token',
      '    clientSecret: { secret: bench-secret }',
    );
  }
  return `${lines.join('\n')}\n`;
}

function tokenFor(key: TokenKey): CachedToken {
  const now = Date.now();
  return {
    accessToken: `token-${key.id}`,
    scope: undefined,
    obtainedAt: now,
    expiresAt: now + 3_600_000,
    usableUntil: now + 3_570_000,
    refreshAt: Number.POSITIVE_INFINITY,
  };
}

const store: SharedTokenStore = {
  get: () => Promise.resolve(undefined),
  fetch: (key) => Promise.resolve(tokenFor(key)),
  invalidate: () => Promise.resolve(),
  close: () => Promise.resolve(),
};

function time(lookups: number, lookup: (index: number) => unknown, size: number): number {
  let found = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < lookups; i++) if (lookup((i * STRIDE) % size) !== undefined) found++;
  const ns = Number(process.hrtime.bigint() - started);
  if (found !== lookups) throw new Error(`peek missed ${lookups - found} cached tokens`);
  return ns / lookups;
}

/** One result per cache size: 10 tokens, then 10,000. */
export async function measurePeek(): Promise<PeekResult[]> {
  const results: PeekResult[] = [];
  for (const connections of CONNECTIONS) results.push(await measureOne(connections));
  return results;
}

async function measureOne(connections: number): Promise<PeekResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-bench-peek-'));
  try {
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, configYaml(connections));
    const config = await buildConfigOnly(file, { env: { BENCH_CLIENT_SECRET: 'bench' } });
    const provider = new TokenProvider(
      config.connections.values(),
      { tokenRequest: () => undefined, tokenFailure: () => undefined },
      store,
    );
    const keys: TokenKey[] = [];
    for (const connection of config.connections.keys()) {
      for (let p = 0; p < PARAM_SETS; p++) keys.push(tokenKey(connection, { scope: `scope-${p}` }));
    }
    const map = new Map<string, CachedToken>();
    for (const key of keys) map.set(key.id, await provider.get(key));

    const peek = (index: number) => provider.peek(keys[index]!);
    // Reading a field of the token too, as peek does: with 10,000 tokens each read is a likely
    // cache miss, and the comparison should pay it on both sides.
    const mapGet = (index: number) => map.get(keys[index]!.id)?.usableUntil;
    time(WARMUP_LOOKUPS, peek, keys.length);
    time(WARMUP_LOOKUPS, mapGet, keys.length);
    const result = {
      connections,
      cachedTokens: keys.length,
      lookups: LOOKUPS,
      nsPerPeek: time(LOOKUPS, peek, keys.length),
      nsPerMapGet: time(LOOKUPS, mapGet, keys.length),
    };
    provider.close();
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
