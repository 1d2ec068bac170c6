/**
 * The observability tests' world: a real authorization server (oidc-provider), an echo upstream,
 * a fake token endpoint for a malformed error answer, two closed ports (a token endpoint and an
 * upstream that are down), a route guarded by an API key, and a gateway wired to all of them. `driveTraffic` sends one request
 * of every kind the dashboard and the alerts care about.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startOidcProvider, type OidcServer } from './oidc.js';
import { json, startEchoUpstream, startTokenEndpoint, type TestServer } from './servers.js';
import { startGateway, type TestGateway } from './gateway.js';

export const GOOD_SECRET = 'good-secret-0123456789-abcdefghij';
export const WRONG_SECRET = 'wrong-secret-9876543210-zyxwvutsr';
export const JWT_SECRET = 'hmac-secret-for-client-secret-jwt-0123456789';
export const GATE_KEY = 'gateway-api-key-for-the-guarded-route-42';
/** What the fake token endpoint says: control characters and far too much text. */
export const HOSTILE_DESCRIPTION = `scope\r\nX-Injected: yes\u0000\u001b[31m red ${'z'.repeat(600)}`;

/** The samples driveTraffic produces, by request id, so tests can find each request's log lines. */
export const REQUEST_IDS = {
  success: ['obs-success-1', 'obs-success-2', 'obs-success-3'],
  invalidClient: 'obs-invalid-client',
  tokenDown: 'obs-token-down',
  upstreamDown: 'obs-upstream-down',
  unmatched: 'obs-unmatched',
  malformed: 'obs-malformed',
  denied: 'obs-denied',
} as const;

export const CONNECTIONS = ['good', 'wrong-secret', 'token-down', 'malformed'] as const;
export const ROUTES = ['orders', 'bad-client', 'token-down', 'upstream-down', 'malformed', 'guarded'] as const;

export interface Scenario {
  oidc: OidcServer;
  upstream: TestServer;
  malformedEndpoint: TestServer;
  gw: TestGateway;
  /** The access token the upstream received (filled in by driveTraffic). */
  accessToken: string | undefined;
  /** The client assertion the fake token endpoint received (filled in by driveTraffic). */
  assertion: string | undefined;
  /** Every credential that must never show up in /usage, /metrics or the logs. */
  credentials(): string[];
  stop(): Promise<void>;
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

export async function startScenario(options: { accessLog?: string } = {}): Promise<Scenario> {
  const oidc = await startOidcProvider([
    { client_id: 'good-client', client_secret: GOOD_SECRET, token_endpoint_auth_method: 'client_secret_basic' },
  ]);
  const upstream = await startEchoUpstream();
  const malformedEndpoint = await startTokenEndpoint((_req, res) =>
    json(res, 400, { error: 'invalid_request', error_description: HOSTILE_DESCRIPTION }),
  );
  const tokenDownPort = await closedPort();
  const upstreamDownPort = await closedPort();
  const gw = await startGateway(
    `
listen: { host: 127.0.0.1 }
logging: { accessLog: ${options.accessLog ?? 'info'} }
secrets:
  good: { env: TG_OBS_GOOD }
  wrong: { env: TG_OBS_WRONG }
  jwt: { env: TG_OBS_JWT }
  gate: { env: TG_OBS_GATE }
connections:
  good:
    displayName: Good Partner
    clientId: good-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: good }
    params: { scope: orders.read }
  wrong-secret:
    displayName: Wrong Secret
    clientId: good-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: wrong }
  token-down:
    clientId: down-client
    tokenUrl: http://127.0.0.1:${tokenDownPort}/token
    clientSecret: { secret: good }
    retry: { maxAttempts: 2 }
  malformed:
    clientId: malformed-client
    tokenUrl: ${malformedEndpoint.url}/token
    clientSecret: { secret: jwt, method: client_secret_jwt }
routes:
  - name: orders
    match: { pathPrefix: /orders }
    upstream: ${upstream.url}
    auth: { connection: good }
  - name: bad-client
    match: { pathPrefix: /bad-client }
    upstream: ${upstream.url}
    auth: { connection: wrong-secret }
  - name: token-down
    match: { pathPrefix: /token-down }
    upstream: ${upstream.url}
    auth: { connection: token-down }
  - name: upstream-down
    match: { pathPrefix: /upstream-down }
    upstream: http://127.0.0.1:${upstreamDownPort}
    auth: { connection: good }
  - name: malformed
    match: { pathPrefix: /malformed }
    upstream: ${upstream.url}
    auth: { connection: malformed }
  - name: guarded
    match: { pathPrefix: /guarded }
    upstream: ${upstream.url}
    auth: { type: none }
    access: { apiKeys: [ { secret: gate } ] }
`,
    { env: { ...process.env, TG_OBS_GOOD: GOOD_SECRET, TG_OBS_WRONG: WRONG_SECRET, TG_OBS_JWT: JWT_SECRET, TG_OBS_GATE: GATE_KEY } },
  );
  const scenario: Scenario = {
    oidc,
    upstream,
    malformedEndpoint,
    gw,
    accessToken: undefined,
    assertion: undefined,
    credentials: () => [GOOD_SECRET, WRONG_SECRET, JWT_SECRET, GATE_KEY, scenario.accessToken!, scenario.assertion!],
    async stop() {
      await gw.stop();
      await Promise.all([upstream.close(), malformedEndpoint.close(), oidc.close()]);
    },
  };
  return scenario;
}

async function send(scenario: Scenario, path: string, requestId: string, expected: number): Promise<void> {
  const response = await fetch(`${scenario.gw.url}${path}`, { headers: { 'x-request-id': requestId } });
  await response.arrayBuffer();
  assert.equal(response.status, expected, `${path} answered ${response.status}`);
}

/** One request of each kind, then a config reload that fails. */
export async function driveTraffic(scenario: Scenario): Promise<void> {
  for (const id of REQUEST_IDS.success) await send(scenario, '/orders/1?secret=not-a-label', id, 200);
  await send(scenario, '/bad-client/x', REQUEST_IDS.invalidClient, 502);
  await send(scenario, '/token-down/x', REQUEST_IDS.tokenDown, 503);
  await send(scenario, '/upstream-down/x', REQUEST_IDS.upstreamDown, 502);
  await send(scenario, '/nowhere/at/all', REQUEST_IDS.unmatched, 404);
  await send(scenario, '/malformed/x', REQUEST_IDS.malformed, 502);
  await send(scenario, '/guarded/x', REQUEST_IDS.denied, 401);

  scenario.accessToken = scenario.upstream.received
    .find((r) => r.headers.authorization !== undefined)!
    .headers.authorization!.replace(/^Bearer /, '');
  scenario.assertion =
    new URLSearchParams(scenario.malformedEndpoint.received[0]!.body.toString('utf8')).get('client_assertion') ?? undefined;
  assert.ok(
    scenario.accessToken.length > 10 && scenario.assertion !== undefined,
    'the traffic produced a token and an assertion to look for',
  );

  const { configFile, gateway } = scenario.gw;
  const good = readFileSync(configFile, 'utf8');
  writeFileSync(configFile, 'routes: [ unclosed');
  assert.equal((await gateway.reload()).ok, false);
  writeFileSync(configFile, good);
}

/** `name{a="1",b="2"}` → value, labels sorted, for every sample line of a text exposition. */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match !== null, `not an exposition line: ${line}`);
    const labels = [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort();
    samples.set(sampleKey(match[1]!, labels), Number(match[3]));
  }
  return samples;
}

export function sampleKey(name: string, labels: Record<string, string> | string[] = {}): string {
  const pairs = Array.isArray(labels)
    ? labels
    : Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .sort();
  return pairs.length === 0 ? name : `${name}{${pairs.join(',')}}`;
}
