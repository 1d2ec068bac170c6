/**
 * deploy/compose/compose.yaml: three gateways sharing Redis, Prometheus loading the repo's alert
 * rules and Grafana provisioned with the repo's dashboard. Parsed with `yaml` and checked for its
 * structure (services, ports, every bind mount exists in the repo), its gateway config passes
 * validate --strict, and promtool checks its Prometheus config with the rules beside it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { programPath, requireProgram } from './support/programs.js';
import { at, isObj, str, type Obj, ROOT, secretFiles, validateContainerConfig } from './support/deploy.js';

const COMPOSE = join(ROOT, 'deploy', 'compose');
// `merge: true` applies the `<<: *gateway` merge keys as Compose does.
const compose = parse(readFileSync(join(COMPOSE, 'compose.yaml'), 'utf8'), { merge: true }) as Obj;
const services = compose.services as Record<string, Obj>;
const gateways = Object.keys(services).filter((name) => name.startsWith('gateway-'));

/** A service's bind mounts as [host path (absolute), container path]. */
function binds(service: Obj): [string, string][] {
  return ((service.volumes as string[] | undefined) ?? []).flatMap((v) => {
    const [source = '', target = ''] = v.split(':');
    return source.startsWith('.') ? [[resolve(COMPOSE, source), target] as [string, string]] : [];
  });
}

function mountedAt(service: Obj, containerPath: string): string {
  const bind = binds(service).find(([, target]) => target === containerPath);
  assert.ok(bind, `${containerPath} is mounted`);
  return bind[0];
}

describe('deploy/compose: structure', () => {
  it('runs three gateways, Redis, Prometheus and Grafana', () => {
    assert.deepEqual(gateways, ['gateway-1', 'gateway-2', 'gateway-3']);
    for (const name of ['redis', 'prometheus', 'grafana']) assert.ok(isObj(services[name]), name);
  });

  it('every bind mount exists in the repository', () => {
    for (const [name, service] of Object.entries(services))
      for (const [source] of binds(service)) assert.ok(existsSync(source), `${name}: ${source}`);
  });

  it('each gateway publishes its own proxy and admin port, and the ports are unique', () => {
    const published = new Set<string>();
    for (const name of gateways) {
      const ports = services[name]?.ports as string[];
      const targets = ports.map((p) => p.split(':').at(-1));
      assert.deepEqual(targets.sort(), ['8080', '9090'], name);
      for (const p of ports) {
        const hostPort = p.split(':').slice(0, -1).join(':');
        assert.ok(!published.has(hostPort), `${p} is published once`);
        published.add(hostPort);
      }
    }
  });

  it('mounts the config and secrets as folders, read-only, as a non-root read-only container with a drain-long grace period', () => {
    const config = parse(readFileSync(join(COMPOSE, 'gateway', 'gateway.yaml'), 'utf8')) as Obj;
    for (const name of gateways) {
      const s = services[name] as Obj;
      const file = str(at(s, 'environment', 'TOKENGATE_CONFIG'));
      const folder = mountedAt(s, posix.dirname(file));
      assert.ok(existsSync(join(folder, posix.basename(file))), `${name}: the config is in the mounted folder`);
      for (const v of s.volumes as string[]) assert.match(v, /:ro$/, `${name}: ${v} is read-only`);
      assert.equal(s.read_only, true);
      assert.deepEqual(s.cap_drop, ['ALL']);
      assert.doesNotMatch(str(s.user), /^0(:|$)|^root/);
      const grace = Number(/^(\d+)s$/.exec(str(s.stop_grace_period))?.[1]);
      assert.ok(grace * 1000 > Number(at(config, 'listen', 'drainTimeoutMs')), `${name}: stop_grace_period covers the drain`);
      assert.deepEqual(at(s, 'depends_on', 'redis'), { condition: 'service_healthy' });
      for (const f of secretFiles(readFileSync(join(folder, 'gateway.yaml'), 'utf8'))) mountedAt(s, posix.dirname(f));
    }
  });

  it('the gateway config binds beyond loopback, shares the Redis service and passes validate --strict', () => {
    const text = readFileSync(join(COMPOSE, 'gateway', 'gateway.yaml'), 'utf8');
    const config = parse(text) as Obj;
    assert.equal(at(config, 'listen', 'host'), '0.0.0.0');
    assert.equal(at(config, 'admin', 'host'), '0.0.0.0', 'Prometheus scrapes from its own container');
    assert.equal(at(config, 'cache', 'store'), 'redis');
    assert.ok(isObj(services[new URL(str(at(config, 'cache', 'redis', 'url'))).hostname]));
    const { status, output } = validateContainerConfig(text, dirname(secretFiles(text)[0] ?? ''));
    assert.equal(status, 0, output);
    assert.doesNotMatch(output, /warning/);
  });

  it("Prometheus scrapes every gateway's admin port and loads the repo's alert rules", () => {
    const prometheus = services.prometheus as Obj;
    const configFile = mountedAt(prometheus, '/etc/prometheus/prometheus.yml');
    const config = parse(readFileSync(configFile, 'utf8')) as Obj;
    const targets = at(config, 'scrape_configs', 0, 'static_configs', 0, 'targets') as string[];
    assert.deepEqual(
      targets,
      gateways.map((g) => `${g}:9090`),
    );
    assert.equal(mountedAt(prometheus, '/etc/prometheus/alerts.yml'), join(ROOT, 'deploy', 'prometheus', 'alerts.yml'));
    assert.deepEqual(config.rule_files, ['alerts.yml']);
  });

  it("Grafana is provisioned with a Prometheus data source and the repo's dashboard", () => {
    const grafana = services.grafana as Obj;
    const provisioning = mountedAt(grafana, '/etc/grafana/provisioning');
    const datasources = parse(readFileSync(join(provisioning, 'datasources', 'prometheus.yaml'), 'utf8')) as Obj;
    assert.equal(at(datasources, 'datasources', 0, 'type'), 'prometheus');
    assert.equal(at(datasources, 'datasources', 0, 'url'), 'http://prometheus:9090');
    const providers = parse(readFileSync(join(provisioning, 'dashboards', 'tokengate.yaml'), 'utf8')) as Obj;
    const path = str(at(providers, 'providers', 0, 'options', 'path'));
    assert.equal(mountedAt(grafana, path), join(ROOT, 'deploy', 'grafana'));
    assert.ok(existsSync(join(ROOT, 'deploy', 'grafana', 'tokengate-dashboard.json')));
  });
});

describe('deploy/compose: promtool', requireProgram('promtool', 'prometheus'), () => {
  it('promtool check config passes on the Prometheus config with the rules mounted beside it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokengate-compose-'));
    try {
      const prometheus = services.prometheus as Obj;
      copyFileSync(mountedAt(prometheus, '/etc/prometheus/prometheus.yml'), join(dir, 'prometheus.yml'));
      copyFileSync(mountedAt(prometheus, '/etc/prometheus/alerts.yml'), join(dir, 'alerts.yml'));
      const run = spawnSync(programPath('promtool'), ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
      assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
      assert.match(run.stdout, /SUCCESS: 1 rule files found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
