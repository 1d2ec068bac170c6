/**
 * A live `node dist/cli.js serve` on a config that uses every feature (secrets from a file, the
 * environment and inline; clientSecret and privateKeyJwt connections with params; routes with
 * host, methods, stripPrefix, access and allowFrom; the memory cache), against a real
 * oidc-provider and an echo upstream. Reloads are triggered with SIGHUP and their outcome read
 * from the log, one `config_reloaded` or `config_reload_refused` line per reload.
 *
 * The config path is a symlink into another folder: the file watcher watches the symlink's
 * folder, so writing the target never starts a reload of its own; only SIGHUP does.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { encodeKey, generateKey } from './keys.js';
import { startOidcProvider, type OidcServer } from './oidc.js';
import { ServeProcess } from './processes.js';
import { startEchoUpstream, type TestServer } from './servers.js';

export const CLIENT_SECRET = 'live-config-secret-0123456789abcdef';
export const GATE_KEY = 'live-config-gate-key-0123456789';
export const ENV_NAME = 'TG_LIVE_CLIENT_SECRET';

export type Outcome = 'success' | 'failure';

export interface ReloadOutcome {
  outcome: Outcome;
  /** The `config_reload_problem` log lines of a refused reload. */
  problems: Array<Record<string, unknown>>;
}

export interface LiveGateway {
  readonly serve: ServeProcess;
  readonly oidc: OidcServer;
  readonly upstream: TestServer;
  /** The folder holding the config symlink and the secret files (relative secret paths resolve here). */
  readonly dir: string;
  /** The config path the gateway was started with (a symlink). */
  readonly configFile: string;
  /** The environment of the serve process (and of an in-process build that must agree with it). */
  readonly env: NodeJS.ProcessEnv;
  /** The config every mutation starts from, as plain data. */
  base(): Record<string, unknown>;
  /** Writes `text` as the config and reloads with SIGHUP; resolves with the reload's outcome. */
  reload(text: string, options?: { problems: boolean }): Promise<ReloadOutcome>;
  /**
   * Reloads with SIGHUP without writing the config; resolves with the reload's outcome and, unless
   * `problems: false`, the problems it logged.
   */
  sighup(options?: { problems: boolean }): Promise<ReloadOutcome>;
  /** Asserts that /healthz and /readyz answer 200 and that the process runs. */
  assertHealthy(): Promise<void>;
  /** Asserts that the base config's routes answer 200 with a token injected by each connection. */
  assertBaseRoutesServe(): Promise<void>;
  close(): Promise<void>;
}

export async function startLiveGateway(): Promise<LiveGateway> {
  const key = generateKey({ type: 'ec', curve: 'P-256' });
  const oidc = await startOidcProvider([
    { client_id: 'live-basic', client_secret: CLIENT_SECRET, token_endpoint_auth_method: 'client_secret_post' },
    { client_id: 'live-jwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.publicJwk('live-kid')] } },
  ]);
  const upstream = await startEchoUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-live-'));
  const targets = join(dir, 'targets');
  mkdirSync(targets);
  const conf = join(dir, 'conf');
  mkdirSync(conf);
  writeFileSync(join(conf, 'client-key.pem'), encodeKey(key.privateKey, 'pkcs8'));
  const target = join(targets, 'gateway.yaml');
  const configFile = join(conf, 'gateway.yaml');
  symlinkSync(target, configFile);

  const base = (): Record<string, unknown> => ({
    listen: { host: '127.0.0.1', port: 0, headersTimeoutMs: 5000, requestTimeoutMs: 30000, drainTimeoutMs: 2000 },
    admin: { host: '127.0.0.1', port: 0 },
    logging: { accessLog: 'off' },
    secrets: {
      'client-secret': { env: ENV_NAME },
      'jwt-key': { file: 'client-key.pem' },
      'gate-key': { value: GATE_KEY },
    },
    cache: { store: 'memory' },
    access: { header: 'X-Gateway-Key', apiKeys: [{ secret: 'gate-key' }], allowFrom: ['127.0.0.0/8', '::1/128'] },
    connections: {
      basic: {
        displayName: 'Basic',
        clientId: 'live-basic',
        tokenUrl: oidc.tokenUrl,
        clientSecret: { secret: 'client-secret', method: 'client_secret_post' },
        params: { scope: 'orders.read' },
        timeouts: { connectMs: 2000, totalMs: 4000 },
        retry: { maxAttempts: 2, budgetMs: 6000, retryAfterCapMs: 1000 },
        token: { expirySkewSeconds: 30, defaultLifetimeSeconds: 300, refreshAhead: true },
      },
      jwt: {
        clientId: 'live-jwt',
        tokenUrl: oidc.tokenUrl,
        privateKeyJwt: { secret: 'jwt-key', keyId: 'live-kid', algorithm: 'ES256' },
        params: { scope: 'orders.write' },
      },
    },
    routes: [
      {
        name: 'orders',
        match: { pathPrefix: '/orders', methods: ['GET', 'POST'], host: '127.0.0.1' },
        upstream: `${upstream.url}/base`,
        stripPrefix: true,
        auth: { connection: 'basic', params: { scope: 'orders.read' } },
        timeouts: { connectMs: 2000, responseMs: 5000 },
        access: { header: 'X-Route-Key', apiKeys: [{ secret: 'gate-key' }], allowFrom: ['127.0.0.1/32', '::1'] },
      },
      {
        name: 'signed',
        match: { pathPrefix: '/signed' },
        upstream: upstream.url,
        auth: { connection: 'jwt' },
        replayOn401: 'any',
        replayBodyLimit: 1024,
      },
      { name: 'open', match: { pathPrefix: '/open' }, upstream: upstream.url, auth: { type: 'none' } },
    ],
  });

  const write = (text: string) => {
    // Renamed into place: the gateway never reads a half-written file.
    writeFileSync(`${target}.tmp`, text);
    renameSync(`${target}.tmp`, target);
  };
  write(stringify(base()));
  const env = { ...process.env, [ENV_NAME]: CLIENT_SECRET };
  const serve = await ServeProcess.start(configFile, env);

  // A reload's outcome is read from tokengate_config_reloads_total (polled: the log is flushed in
  // batches), its problems from the log: the k-th refusal's `config_reload_problem` lines.
  let scanned = 0;
  const refusals: Array<Array<Record<string, unknown>>> = [];
  let pendingProblems: Array<Record<string, unknown>> = [];
  const scan = () => {
    for (; scanned < serve.logs.length; scanned++) {
      const line = serve.logs[scanned]!;
      if (line.event === 'config_reload_problem') pendingProblems.push(line);
      else if (line.event === 'config_reload_refused') {
        refusals.push(pendingProblems);
        pendingProblems = [];
      }
    }
  };
  const counters = async () => {
    const text = await (await fetch(`${serve.admin}/metrics`)).text();
    const read = (outcome: Outcome) => {
      const line = text.split('\n').find((l) => l.startsWith(`tokengate_config_reloads_total{outcome="${outcome}"}`));
      return line === undefined ? 0 : Number(line.split(' ')[1]);
    };
    return { success: read('success'), failure: read('failure') };
  };
  let known = { success: 0, failure: 0 };

  const headers = { 'x-gateway-key': GATE_KEY, 'x-route-key': GATE_KEY };
  const live: LiveGateway = {
    serve,
    oidc,
    upstream,
    dir: conf,
    configFile,
    env,
    base,
    async reload(text, options) {
      write(text);
      return live.sighup(options);
    },
    async sighup(options = { problems: true }) {
      serve.child.kill('SIGHUP');
      const deadline = Date.now() + 20_000;
      for (;;) {
        assert.equal(serve.child.exitCode, null, `the gateway exited:\n${serve.output().slice(-4000)}`);
        const now = await counters();
        const moved = now.success + now.failure - (known.success + known.failure);
        if (moved > 0) {
          assert.equal(moved, 1, 'one reload per SIGHUP');
          const outcome: Outcome = now.failure > known.failure ? 'failure' : 'success';
          known = now;
          if (outcome === 'success' || !options.problems) return { outcome, problems: [] };
          await serve.waitForLog(() => {
            scan();
            return refusals.length >= now.failure;
          });
          return { outcome, problems: refusals[now.failure - 1]! };
        }
        assert.ok(Date.now() < deadline, 'no reload outcome within 20 s');
        await new Promise((wake) => setTimeout(wake, 5));
      }
    },
    async assertHealthy() {
      assert.equal(serve.child.exitCode, null, `the gateway exited:\n${serve.output().slice(-4000)}`);
      for (const path of ['/healthz', '/readyz']) {
        const response = await fetch(`${serve.admin}${path}`);
        await response.arrayBuffer();
        assert.equal(response.status, 200, path);
      }
    },
    async assertBaseRoutesServe() {
      for (const [path, connection] of [
        ['/orders/items?x=1', 'basic'],
        ['/signed/x', 'jwt'],
      ] as const) {
        const response = await fetch(`${serve.proxy}${path}`, { headers });
        const body = await response.text();
        assert.equal(response.status, 200, `${path}: ${body}`);
        const echoed = JSON.parse(body) as { authorization: string | null; url: string };
        assert.match(echoed.authorization ?? '', /^Bearer .{10,}/, `${path} carries a token from ${connection}`);
        if (path.startsWith('/orders')) assert.equal(echoed.url, '/base/items?x=1');
      }
    },
    async close() {
      await serve.kill();
      await upstream.close();
      await oidc.close();
    },
  };
  return live;
}
