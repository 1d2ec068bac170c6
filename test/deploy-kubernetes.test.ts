/**
 * deploy/kubernetes: every manifest of the base and of the fleet overlay is valid against the
 * Kubernetes API schemas (kubernetes-models; the ServiceMonitor against the prometheus-operator
 * CRD's), the kustomizations resolve (kubectl kustomize where kubectl is installed, and this
 * repo's small resolver, which must agree with it), the Deployment's probes, drain and security
 * settings fit the gateway config the ConfigMap carries, and that config passes validate --strict.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import * as k8s from 'kubernetes-models';
import * as promOperator from '@kubernetes-models/prometheus-operator';
import { programPath, requireProgram } from './support/programs.js';
import {
  at,
  isObj,
  type Json,
  type Obj,
  parseStream,
  renderKustomization,
  ROOT,
  secretFiles,
  str,
  validateContainerConfig,
} from './support/deploy.js';

const KUBE = join(ROOT, 'deploy', 'kubernetes');
const BASE = join(KUBE, 'base');
const FLEET = join(KUBE, 'overlays', 'fleet');

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: Obj) => Validatable;

/** The kubernetes-models class for an apiVersion and kind ('apps/v1' -> apps.v1.Deployment). */
function modelFor(apiVersion: string, kind: string): ModelClass | undefined {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  const key = group.replace(/\.(\w)/g, (_, c: string) => c.toUpperCase());
  const roots: Record<string, unknown> = { ...k8s, ...promOperator };
  const versions = group === '' ? { [version]: roots[version] } : (roots[key] as Record<string, unknown> | undefined);
  const models = versions?.[version] as Record<string, unknown> | undefined;
  return models?.[kind] as ModelClass | undefined;
}

function kubectlRender(folder: string): Obj[] {
  const run = spawnSync(programPath('kubectl'), ['kustomize', folder], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return parseStream(run.stdout);
}

const byKey = (objects: Obj[]) => new Map(objects.map((o) => [`${str(o.kind)}/${str(at(o, 'metadata', 'name'))}`, o]));

function find(objects: Obj[], kind: string, name: string): Obj {
  const found = objects.find((o) => o.kind === kind && at(o, 'metadata', 'name') === name);
  assert.ok(found, `${kind}/${name} is rendered`);
  return found;
}

function matches(selector: Json | undefined, labels: Json | undefined): boolean {
  assert.ok(isObj(selector) && isObj(labels));
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const rendered = {
  base: renderKustomization(BASE),
  fleet: renderKustomization(FLEET),
};

describe('deploy/kubernetes: kustomize', () => {
  it("every kustomization's resources, patches and generator files exist", () => {
    for (const folder of [BASE, FLEET]) {
      const k = parse(readFileSync(join(folder, 'kustomization.yaml'), 'utf8')) as Obj;
      const paths = [
        ...(k.resources as string[]),
        ...((k.patches as Obj[] | undefined) ?? []).map((p) => str(p.path)),
        ...((k.configMapGenerator as Obj[] | undefined) ?? []).flatMap((g) => g.files as string[]),
      ];
      for (const path of paths) assert.ok(existsSync(join(folder, path)), `${folder}: ${path} exists`);
    }
  });

  // kubectl is not in Debian's archive: its package comes from the Kubernetes project's apt repository.
  it('kubectl kustomize renders what the resolver renders (base and fleet)', requireProgram('kubectl', 'kubectl'), () => {
    for (const [folder, mine] of [
      [BASE, rendered.base],
      [FLEET, rendered.fleet],
    ] as const) {
      const theirs = kubectlRender(folder);
      assert.deepEqual(byKey(mine), byKey(theirs), folder);
    }
  });

  it('the fleet overlay puts everything in its namespace and pins the image', () => {
    for (const o of rendered.fleet) if (o.kind !== 'Namespace') assert.equal(at(o, 'metadata', 'namespace'), 'tokengate', str(o.kind));
    const image = at(find(rendered.fleet, 'Deployment', 'tokengate'), 'spec', 'template', 'spec', 'containers', 0, 'image');
    assert.match(str(image), /:\d+\.\d+\.\d+$/);
  });
});

describe('deploy/kubernetes: API schemas', () => {
  for (const [name, objects] of Object.entries(rendered)) {
    it(`every object of ${name} is valid against its API schema`, () => {
      const kinds = new Set<string>();
      for (const o of objects) {
        const Model = modelFor(str(o.apiVersion), str(o.kind));
        assert.ok(Model, `a schema for ${str(o.apiVersion)} ${str(o.kind)}`);
        assert.doesNotThrow(() => new Model(o).validate(), `${str(o.kind)}/${str(at(o, 'metadata', 'name'))}`);
        kinds.add(str(o.kind));
      }
      for (const kind of ['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'NetworkPolicy'])
        assert.ok(kinds.has(kind), `${name} has a ${kind}`);
      if (name === 'fleet') assert.ok(kinds.has('ServiceMonitor') && kinds.has('Namespace'));
    });
  }

  it('the schema check catches a broken manifest (a string replica count)', () => {
    const Model = modelFor('apps/v1', 'Deployment');
    assert.ok(Model);
    const broken = structuredClone(find(rendered.base, 'Deployment', 'tokengate'));
    (broken.spec as Obj).replicas = 'three';
    assert.throws(() => new Model(broken).validate(), /replicas/);
  });
});

describe('deploy/kubernetes: the gateway Deployment fits its config', () => {
  const objects = rendered.fleet;
  const deployment = find(objects, 'Deployment', 'tokengate');
  const pod = at(deployment, 'spec', 'template') as Obj;
  const container = at(pod, 'spec', 'containers', 0) as Obj;
  const configMap = find(objects, 'ConfigMap', 'tokengate-config');
  const configText = str(at(configMap, 'data', 'gateway.yaml'));
  const config = parse(configText) as Obj;
  const env = new Map(((container.env as Obj[] | undefined) ?? []).map((e) => [str(e.name), str(e.value)]));
  const portNumber = (name: Json | undefined) =>
    typeof name === 'number' ? name : ((container.ports as Obj[]).find((p) => p.name === name)?.containerPort as number | undefined);

  it('runs at least 3 replicas, and the HPA and PDB keep at least that many', () => {
    assert.ok(Number(at(deployment, 'spec', 'replicas')) >= 3);
    const hpa = find(objects, 'HorizontalPodAutoscaler', 'tokengate');
    assert.ok(Number(at(hpa, 'spec', 'minReplicas')) >= 3);
    assert.equal(at(hpa, 'spec', 'scaleTargetRef', 'name'), 'tokengate');
    const pdb = find(objects, 'PodDisruptionBudget', 'tokengate');
    assert.ok(matches(at(pdb, 'spec', 'selector', 'matchLabels'), at(pod, 'metadata', 'labels')));
    assert.equal(at(pdb, 'spec', 'maxUnavailable'), 1);
  });

  it('probes /healthz and /readyz on the admin port, which the config binds beyond loopback', () => {
    assert.equal(at(container, 'livenessProbe', 'httpGet', 'path'), '/healthz');
    assert.equal(at(container, 'readinessProbe', 'httpGet', 'path'), '/readyz');
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'])
      assert.equal(portNumber(at(container, probe, 'httpGet', 'port')), at(config, 'admin', 'port'), probe);
    // kubelet probes the pod's IP: an admin listener on the default 127.0.0.1 would fail every probe.
    assert.equal(at(config, 'admin', 'host'), '0.0.0.0');
    assert.equal(at(config, 'listen', 'host'), '0.0.0.0');
    assert.equal(portNumber('proxy'), at(config, 'listen', 'port'));
  });

  it('gives the preStop sleep plus the drain time before SIGKILL', () => {
    const command = at(container, 'lifecycle', 'preStop', 'exec', 'command') as string[];
    assert.equal(command[0], 'sleep');
    const preStop = Number(command[1]);
    assert.ok(preStop > 0);
    const drainSeconds = Number(at(config, 'listen', 'drainTimeoutMs')) / 1000;
    assert.ok(Number(at(pod, 'spec', 'terminationGracePeriodSeconds')) > preStop + drainSeconds);
  });

  it('runs non-root, read-only, without capabilities, with the RuntimeDefault seccomp profile and resources', () => {
    for (const d of objects.filter((o) => o.kind === 'Deployment')) {
      const spec = at(d, 'spec', 'template', 'spec') as Obj;
      assert.equal(at(spec, 'securityContext', 'runAsNonRoot'), true);
      assert.ok(Number(at(spec, 'securityContext', 'runAsUser')) > 0);
      assert.equal(at(spec, 'securityContext', 'seccompProfile', 'type'), 'RuntimeDefault');
      for (const c of spec.containers as Obj[]) {
        assert.equal(at(c, 'securityContext', 'readOnlyRootFilesystem'), true);
        assert.equal(at(c, 'securityContext', 'allowPrivilegeEscalation'), false);
        assert.deepEqual(at(c, 'securityContext', 'capabilities', 'drop'), ['ALL']);
        assert.ok(at(c, 'resources', 'requests', 'cpu') !== undefined && at(c, 'resources', 'limits', 'memory') !== undefined);
      }
    }
  });

  it('mounts the ConfigMap as the folder TOKENGATE_CONFIG names (no subPath, so edits reach the hot reload)', () => {
    const file = env.get('TOKENGATE_CONFIG') ?? '';
    const mount = (container.volumeMounts as Obj[]).find((m) => m.mountPath === posix.dirname(file));
    assert.ok(mount && mount.subPath === undefined);
    const volume = (at(pod, 'spec', 'volumes') as Obj[]).find((v) => v.name === mount.name);
    assert.equal(at(volume, 'configMap', 'name'), 'tokengate-config');
    assert.equal(posix.basename(file), 'gateway.yaml');
    assert.equal(env.get('TOKENGATE_ADMIN_PORT'), str(at(config, 'admin', 'port')));
  });

  it("takes every secret from a file in the mounted Secret, which the docs' kubectl create secret makes", () => {
    const files = secretFiles(configText);
    assert.ok(files.length >= 3);
    const mount = (container.volumeMounts as Obj[]).find((m) => files.every((f) => posix.dirname(f) === m.mountPath));
    assert.ok(mount, 'one mount holds every secret file');
    const volume = (at(pod, 'spec', 'volumes') as Obj[]).find((v) => v.name === mount.name);
    const secretName = str(at(volume, 'secret', 'secretName'));
    const docs = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
    const create = docs.split('\n').findIndex((line) => new RegExp(`kubectl (-n \\S+ )?create secret generic ${secretName} `).test(line));
    assert.ok(create >= 0, `docs/operations.md creates the Secret ${secretName}`);
    const command = docs
      .split('\n')
      .slice(create, create + 8)
      .join('\n');
    for (const f of files) assert.match(command, new RegExp(`--from-file=${posix.basename(f)}=`), f);
    for (const key of ['cache', 'admin', 'access']) assert.ok(JSON.stringify(config[key]).includes('secret'), key);
  });

  it('shares its token cache through the Redis Service the base deploys', () => {
    assert.equal(at(config, 'cache', 'store'), 'redis');
    const url = new URL(str(at(config, 'cache', 'redis', 'url')));
    const service = find(objects, 'Service', url.hostname);
    assert.equal(at(service, 'spec', 'ports', 0, 'port'), Number(url.port));
    const redis = find(objects, 'Deployment', url.hostname);
    assert.ok(matches(at(service, 'spec', 'selector'), at(redis, 'spec', 'template', 'metadata', 'labels')));
  });

  it('has Services for the proxy and the admin listener, a ServiceMonitor and scrape annotations for /metrics', () => {
    const proxy = find(objects, 'Service', 'tokengate');
    const admin = find(objects, 'Service', 'tokengate-admin');
    for (const s of [proxy, admin]) assert.ok(matches(at(s, 'spec', 'selector'), at(pod, 'metadata', 'labels')));
    assert.equal(at(proxy, 'spec', 'ports', 0, 'targetPort'), 'proxy');
    assert.equal(at(admin, 'spec', 'ports', 0, 'targetPort'), 'admin');
    const monitor = find(objects, 'ServiceMonitor', 'tokengate');
    assert.ok(matches(at(monitor, 'spec', 'selector', 'matchLabels'), at(admin, 'metadata', 'labels')));
    assert.ok(!matches(at(monitor, 'spec', 'selector', 'matchLabels'), at(proxy, 'metadata', 'labels')), 'only the admin Service');
    assert.equal(at(monitor, 'spec', 'endpoints', 0, 'port'), 'admin');
    assert.equal(at(monitor, 'spec', 'endpoints', 0, 'path'), '/metrics');
    assert.equal(at(pod, 'metadata', 'annotations', 'prometheus.io/port'), str(at(config, 'admin', 'port')));
    assert.equal(at(pod, 'metadata', 'annotations', 'prometheus.io/path'), '/metrics');
  });

  it('lets callers reach the proxy, Prometheus the admin port, and the gateway Redis', () => {
    const policy = find(objects, 'NetworkPolicy', 'tokengate');
    assert.ok(matches(at(policy, 'spec', 'podSelector', 'matchLabels'), at(pod, 'metadata', 'labels')));
    const ingressPorts = (at(policy, 'spec', 'ingress') as Obj[]).flatMap((r) => (r.ports as Obj[]).map((p) => p.port));
    assert.deepEqual(ingressPorts.sort(), ['admin', 'proxy']);
    const egressPorts = (at(policy, 'spec', 'egress') as Obj[]).flatMap((r) => (r.ports as Obj[]).map((p) => p.port));
    for (const port of [53, 443, 6379]) assert.ok(egressPorts.includes(port), `egress to ${port}`);
  });

  it('the ConfigMap config passes validate --strict, with its secret files provided', () => {
    const secretsDir = dirname(secretFiles(configText)[0] ?? '');
    const { status, output } = validateContainerConfig(configText, secretsDir);
    assert.equal(status, 0, output);
    assert.doesNotMatch(output, /warning/);
  });
});
