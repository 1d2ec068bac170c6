/**
 * End to end with a real Prometheus (Debian's `prometheus` package): it scrapes the admin listener
 * every second and evaluates deploy/prometheus/alerts.yml. After one request of every kind its
 * query API returns the failure counters, every metric the dashboard and the alert rules name
 * exists in what it scraped, every dashboard query runs, and the alerts go off.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { parse } from 'yaml';
import { closedPort, driveTraffic, startScenario, type Scenario } from './support/observability.js';
import { programPath, requireProgram } from './support/programs.js';

const ALERTS_FILE = resolve('deploy/prometheus/alerts.yml');
const DASHBOARD_FILE = resolve('deploy/grafana/tokengate-dashboard.json');
/** Prometheus scrapes and evaluates on a timer of its own: poll its API, up to this long. */
const PROMETHEUS_WAIT_MS = 30_000;
const POLL_MS = 250;
/** Exported only with cache.store: redis (at 0 from the start, see observability-metrics). */
const REDIS_ONLY = new Set(['tokengate_cache_errors_total']);

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
interface AlertState {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

/** Every metric name an expression selects: tokengate_* names, and any name followed by `{`. */
function metricNames(expr: string): string[] {
  const names = [...expr.matchAll(/\btokengate_[a-z0-9_]+/g)].map((m) => m[0]);
  names.push(...[...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]!));
  return names;
}

function dashboardExprs(): string[] {
  const exprs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (typeof node === 'object' && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'expr' && typeof value === 'string') exprs.push(value);
        else walk(value);
      }
    }
  };
  walk(JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')));
  return exprs;
}

function alertExprs(): string[] {
  const doc = parse(readFileSync(ALERTS_FILE, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

describe('a real Prometheus scraping the admin listener', requireProgram('prometheus', 'prometheus'), () => {
  let scenario: Scenario;
  let prometheus: ChildProcess;
  let api: string;
  let dir: string;
  let prometheusOutput = '';

  async function get<T>(path: string): Promise<T> {
    const response = await fetch(`${api}${path}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    assert.equal(body.status, 'success', `${path}: ${body.error}`);
    return body.data;
  }

  const query = async (expr: string) => (await get<{ result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result;

  /**
   * Runs `check` until it passes: Prometheus scrapes and evaluates on its own clock (and a scrape
   * that times out on a busy machine briefly hides the series). After the deadline, the last
   * failure, with the scrape target's state and Prometheus's own output.
   */
  async function eventually<T>(check: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + PROMETHEUS_WAIT_MS;
    for (;;) {
      try {
        return await check();
      } catch (error) {
        if (Date.now() < deadline && prometheus.exitCode === null) {
          await delay(POLL_MS);
          continue;
        }
        const targets = await fetch(`${api}/api/v1/targets`).then(
          (r) => r.text(),
          (failure: Error) => failure.message,
        );
        if (error instanceof Error) error.message += `\ntargets: ${targets}\nprometheus said:\n${prometheusOutput.slice(-2000)}`;
        throw error;
      }
    }
  }

  const scrapedOnce = (expr: string) => async () => assert.equal((await query(expr)).length, 1, `no sample for ${expr}`);

  before(async () => {
    const binary = programPath('prometheus');
    scenario = await startScenario();
    dir = mkdtempSync(join(tmpdir(), 'tokengate-prometheus-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(ALERTS_FILE)}]`,
        'scrape_configs:',
        '  - job_name: tokengate',
        `    static_configs: [ { targets: ["${new URL(scenario.gw.admin).host}"] } ]`,
        '',
      ].join('\n'),
    );
    const port = await closedPort();
    api = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      binary,
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    prometheus.stdout!.on('data', (chunk: Buffer) => (prometheusOutput += chunk.toString('utf8')));
    prometheus.stderr!.on('data', (chunk: Buffer) => (prometheusOutput += chunk.toString('utf8')));
    // The zero-valued series must be in Prometheus before the first failure, as in production.
    await eventually(scrapedOnce('up{job="tokengate"} == 1'));
    await driveTraffic(scenario);
    // The refused reload is the last thing driveTraffic does: once scraped, everything is.
    await eventually(scrapedOnce('tokengate_config_reloads_total{outcome="failure"} == 1'));
  });

  after(async () => {
    if (prometheus !== undefined && prometheus.exitCode === null) {
      const exited = new Promise((done) => prometheus.once('exit', done));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await scenario?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('returns the token failure counters by connection and reason from its query API', () =>
    eventually(async () => {
      const failures = await query('tokengate_token_failures_total > 0');
      assert.deepEqual(failures.map((s) => [s.metric.connection, s.metric.reason, s.value[1]]).sort(), [
        ['malformed', 'invalid_request', '1'],
        ['token-down', 'network', '2'],
        ['wrong-secret', 'invalid_client', '1'],
      ]);
      const auth = await query('tokengate_auth_failures_total');
      assert.deepEqual(auth.map((s) => [s.metric.route, s.metric.connection, s.metric.reason, s.value[1]]).sort(), [
        ['bad-client', 'wrong-secret', 'invalid_client', '1'],
        ['malformed', 'malformed', 'invalid_request', '1'],
        ['token-down', 'token-down', 'network', '1'],
      ]);
      assert.deepEqual(
        (await query('tokengate_upstream_errors_total > 0')).map((s) => [s.metric.route, s.metric.reason, s.value[1]]),
        [['upstream-down', 'unavailable', '1']],
      );
      assert.deepEqual(
        (await query('tokengate_config_reloads_total{outcome="failure"}')).map((s) => s.value[1]),
        ['1'],
      );
    }));

  it('has scraped every metric the dashboard and the alert rules name', async () => {
    const scraped = new Set(await get<string[]>('/api/v1/label/__name__/values'));
    const dashboard = new Set(dashboardExprs().flatMap(metricNames));
    const alerts = new Set(alertExprs().flatMap(metricNames));
    assert.ok(dashboard.size >= 8 && alerts.size >= 5, `found ${[...dashboard].join(',')} and ${[...alerts].join(',')}`);
    assert.deepEqual(
      [...dashboard].filter((name) => !scraped.has(name) && !REDIS_ONLY.has(name)),
      [],
      'dashboard metrics missing from the scrape',
    );
    assert.deepEqual(
      [...alerts].filter((name) => !scraped.has(name)),
      [],
      'alert metrics missing from the scrape',
    );
  });

  it('runs every dashboard query, and the failure and expiry panels show data', () =>
    eventually(async () => {
      const results = new Map<string, Sample[]>();
      for (const expr of dashboardExprs()) {
        const concrete = expr
          .replaceAll('$__rate_interval', '1m')
          .replaceAll('$__range', '5m')
          .replace(/\$(instance|connection|route)\b/g, '.*');
        results.set(expr, await query(concrete));
      }
      const find = (fragment: string) => [...results].find(([expr]) => expr.includes(fragment))![1];
      assert.deepEqual(
        find('increase(tokengate_token_failures_total')
          .map((s) => `${s.metric.connection}/${s.metric.reason}`)
          .sort(),
        ['malformed/invalid_request', 'token-down/network', 'wrong-secret/invalid_client'],
      );
      assert.deepEqual(
        find('tokengate_token_expires_in_seconds').map((s) => s.metric.connection),
        ['good'],
      );
    }));

  it('loads the alert rules and raises them on the failures', async () => {
    // `for: 1m` (no valid token) and `for: 5m` (upstream ratio) keep those two pending in a short test.
    const expected = [
      'TokengateConfigReloadFailed firing',
      'TokengateConnectionWithoutValidToken malformed pending',
      'TokengateConnectionWithoutValidToken token-down pending',
      'TokengateConnectionWithoutValidToken wrong-secret pending',
      'TokengateTokenFailures malformed invalid_request firing',
      'TokengateTokenFailures token-down network firing',
      'TokengateTokenFailures wrong-secret invalid_client firing',
      'TokengateUpstreamErrorRatio upstream-down pending',
    ];
    await eventually(async () => {
      const { alerts } = await get<{ alerts: AlertState[] }>('/api/v1/alerts');
      const seen = alerts.map(({ labels: l, state }) =>
        [l.alertname, l.connection, l.reason, l.route, state].filter((v) => v !== undefined).join(' '),
      );
      assert.deepEqual(seen.sort(), expected);
    });
    const { groups } = await get<{ groups: { name: string; rules: { name: string; health: string }[] }[] }>('/api/v1/rules');
    assert.deepEqual(
      groups.map((g) => g.name),
      ['tokengate'],
    );
    assert.deepEqual(
      groups[0]!.rules.map((r) => [r.name, r.health]),
      [
        ['TokengateTokenFailures', 'ok'],
        ['TokengateConnectionWithoutValidToken', 'ok'],
        ['TokengateUpstreamErrorRatio', 'ok'],
        ['TokengateConfigReloadFailed', 'ok'],
        ['TokengateDown', 'ok'],
      ],
    );
  });

  it('finds no secret, token or assertion in what it scraped', async () => {
    const series = await get<Record<string, string>[]>(`/api/v1/series?match[]=${encodeURIComponent('{job="tokengate"}')}`);
    const text = JSON.stringify(series);
    assert.ok(text.includes('wrong-secret'), 'the series were read');
    for (const credential of scenario.credentials()) assert.ok(!text.includes(credential), `a series carries ${credential.slice(0, 12)}`);
  });
});
