/**
 * `npm run bench:dpop`: what DPoP (RFC 9449) costs per request.
 *
 *   1. The proof alone: µs per proof for ES256, EdDSA and PS256 (RSA 2048) with tokengate's signer
 *      (header and key prepared once per key), and with jose's SignJWT built per proof, for scale.
 *   2. The gateway: one process with a Bearer route and DPoP routes (ES256, EdDSA) on the same
 *      upstream, driven in turn by autocannon: requests/s and the gateway's CPU µs per request.
 *
 *   npm run bench:dpop -- --quick    a short run (seconds)
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK } from 'jose';
import { DpopKey, type DpopAlgorithm } from '../src/tokens/dpop/key.js';
import { accessTokenHash, DpopSigner } from '../src/tokens/dpop/proof.js';
import { forkPeer, ROOT, spawnGateway, load, median, pin, PINNING, type LoadResult, type Peer } from './support.js';

const quick = process.argv.includes('--quick');
const PROOFS = quick ? 2_000 : 20_000;
const ROUNDS = quick ? 1 : 3;
const ROUND_S = quick ? 2 : 5;

const log = (line: string) => process.stdout.write(`${line}\n`);

function keyFor(algorithm: DpopAlgorithm): KeyObject {
  if (algorithm === 'EdDSA') return generateKeyPairSync('ed25519').privateKey;
  if (algorithm === 'PS256') return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

/**
 * CPU µs per call (the whole process: jose signs on libuv's threads), the median of interleaved
 * batches: CPU time, unlike wall time, barely moves with what else the machine runs.
 */
async function perCall(count: number, variants: Record<string, () => unknown>): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  for (let batch = 0; batch < 8; batch++) {
    for (const [name, call] of Object.entries(variants)) {
      const before = process.cpuUsage();
      for (let i = 0; i < count; i++) await call();
      const used = process.cpuUsage(before);
      // The first batch warms up (JIT, key caches) and is not counted.
      if (batch > 0) samples[name]!.push((used.user + used.system) / count);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

type ProofCost = Record<'signature' | 'tokengate' | 'jose', number>;

async function proofCost(): Promise<Record<string, ProofCost>> {
  const out: Record<string, ProofCost> = {};
  const ath = accessTokenHash('bench-token-0123456789abcdef0123456789abcdef');
  for (const algorithm of ['ES256', 'EdDSA', 'PS256'] as const) {
    const key = keyFor(algorithm);
    const signer = new DpopSigner(new DpopKey(key, algorithm));
    const batch = Math.max(100, Math.floor(PROOFS / (algorithm === 'PS256' ? 10 : 1) / 8));
    const jwk = await exportJWK(key);
    const publicJwk = Object.fromEntries(Object.entries(jwk).filter(([name]) => name !== 'd'));
    // The floor: the signature over a proof-sized input, nothing else.
    const input = signer.proof('GET', 'http://127.0.0.1:8080', '/v1/orders/1', ath).split('.').slice(0, 2).join('.');
    const cost = (await perCall(batch, {
      signature: () => signer.key.sign(input),
      tokengate: () => signer.proof('GET', 'http://127.0.0.1:8080', '/v1/orders/1', ath),
      jose: () =>
        new SignJWT({ htm: 'GET', htu: 'http://127.0.0.1:8080/v1/orders/1', ath, jti: crypto.randomUUID() })
          .setProtectedHeader({ typ: 'dpop+jwt', alg: algorithm, jwk: publicJwk })
          .setIssuedAt()
          .sign(key),
    })) as ProofCost;
    out[algorithm] = cost;
    const us = (value: number) => `${value.toFixed(1).padStart(6)} µs`;
    log(
      `proof ${algorithm.padEnd(5)}  CPU per call: signature alone ${us(cost.signature)}   tokengate proof ${us(cost.tokengate)}   jose SignJWT ${us(cost.jose)}`,
    );
  }
  return out;
}

function gatewayYaml(port: number, adminPort: number, upstreamPort: number, tokenPort: number, keys: Record<string, string>): string {
  const connection = (name: string, dpop: string) => `
  ${name}:
    clientId: bench
    tokenUrl: http://127.0.0.1:${tokenPort}/token
    clientSecret: { secret: client }${dpop}`;
  const route = (name: string) => `
  - name: ${name}
    match: { pathPrefix: /${name} }
    upstream: http://127.0.0.1:${upstreamPort}
    stripPrefix: true
    auth: { connection: ${name} }`;
  return `
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
logging: { accessLog: off }
secrets:
  client: { value: bench-client-secret }
  es256: { file: ${keys.es256} }
  eddsa: { file: ${keys.eddsa} }
connections:${connection('bearer', '')}${connection('es256', '\n    dpop: { key: es256, algorithm: ES256 }')}${connection('eddsa', '\n    dpop: { key: eddsa, algorithm: EdDSA }')}
routes:${route('bearer')}${route('es256')}${route('eddsa')}
`;
}

async function routeCost(): Promise<Record<string, LoadResult>> {
  const work = mkdtempSync(join(tmpdir(), 'tokengate-bench-dpop-'));
  const peers: Peer[] = [];
  try {
    pin(process.pid, PINNING?.load);
    const upstream = await forkPeer('upstream', join(ROOT, 'bench', 'peers', 'upstream.ts'), [], [], PINNING?.load);
    const tokens = await forkPeer('token endpoint', join(ROOT, 'bench', 'peers', 'dpop-token-endpoint.ts'), [], [], PINNING?.load);
    peers.push(upstream, tokens);
    const keys = { es256: join(work, 'es256.pem'), eddsa: join(work, 'eddsa.pem') };
    writeFileSync(keys.es256, keyFor('ES256').export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(keys.eddsa, keyFor('EdDSA').export({ type: 'pkcs8', format: 'pem' }));
    const gateway = await spawnGateway('gateway', join(work, 'gateway.yaml'), (port, adminPort) =>
      gatewayYaml(port, adminPort, upstream.port, tokens.port, keys),
    );
    peers.push(gateway);
    const routes = ['bearer', 'es256', 'eddsa'];
    for (const name of routes) await load({ url: `${gateway.url}/${name}/x`, duration: 1 });
    const rounds: Record<string, LoadResult[]> = Object.fromEntries(routes.map((name) => [name, []]));
    // Interleaved, so that drift of the machine spreads over all three routes alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of routes)
        rounds[name]!.push(await load({ url: `${gateway.url}/${name}/x`, duration: ROUND_S, pid: gateway.child.pid }));
    }
    const out: Record<string, LoadResult> = {};
    for (const name of routes) {
      const results = rounds[name]!;
      const errors = results.reduce((sum, r) => sum + r.errors, 0);
      if (errors > 0) throw new Error(`${name}: ${errors} failed requests`);
      out[name] = {
        ...results[0]!,
        requestsPerSecond: median(results.map((r) => r.requestsPerSecond)),
        cpuMicrosPerRequest: median(results.map((r) => r.cpuMicrosPerRequest)),
        p99Ms: median(results.map((r) => r.p99Ms)),
      };
      log(
        `route ${name.padEnd(6)}  ${out[name].requestsPerSecond.toFixed(0).padStart(6)} req/s   ${out[name].cpuMicrosPerRequest.toFixed(1).padStart(6)} CPU µs/request   p99 ${out[name].p99Ms.toFixed(2)} ms`,
      );
    }
    return out;
  } finally {
    for (const peer of peers.reverse()) await peer.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

log(`DPoP cost: node ${process.version}, ${cpus().length} CPUs${quick ? ' (--quick)' : ''}`);
await proofCost();
await routeCost();
