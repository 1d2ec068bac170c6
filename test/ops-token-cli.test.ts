/**
 * `tokengate token KEY` (the CLI's "test connection" button) and its admin twins,
 * GET /connections and POST /connections/KEY/test, against a real oidc-provider.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, writeConfig, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { runCli } from './support/processes.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';

const SECRET = 'token-cli-secret-0123456789';
const WRONG_SECRET = 'not-the-secret-9876543210';
const MASKED = /^.{6}….{4} \(\d+ chars\)$/;

describe('token command and admin connection endpoints', () => {
  let oidc: OidcServer;
  let upstream: TestServer;
  let configFile: string;
  let gw: TestGateway;
  /** Every access token the server issued, in order. */
  const issued: string[] = [];
  const env = { ...process.env, TG_CLI_SECRET: SECRET, TG_CLI_WRONG: WRONG_SECRET, LOG_LEVEL: 'silent' };

  before(async () => {
    oidc = await startOidcProvider([{ client_id: 'cli-client', client_secret: SECRET }]);
    oidc.provider.on('grant.success', (ctx: { body: { access_token: string } }) => issued.push(ctx.body.access_token));
    upstream = await startEchoUpstream();
    const yaml = `
listen: { host: 127.0.0.1, port: 0 }
admin: { port: 0 }
secrets:
  good: { env: TG_CLI_SECRET }
  wrong: { env: TG_CLI_WRONG }
connections:
  orders:
    displayName: Orders API
    clientId: cli-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: good }
    params: { scope: orders.read orders.write }
  broken:
    clientId: cli-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: wrong }
routes:
  - name: orders
    match: { pathPrefix: /orders }
    upstream: ${upstream.url}
    auth: { connection: orders }
`;
    configFile = writeConfig(yaml).configFile;
    gw = await startGateway(yaml, { env });
  });

  after(async () => {
    await gw.stop();
    await upstream.close();
    await oidc.close();
  });

  describe('node dist/cli.js token', () => {
    it('prints a JSON summary with a masked token, never the token itself', async () => {
      const result = await runCli(['token', 'orders', '--config', configFile], env);
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout) as Record<string, unknown>;
      const token = issued.at(-1)!;
      assert.equal(summary.ok, true);
      assert.equal(summary.connection, 'orders');
      assert.equal(summary.tokenType, 'Bearer');
      assert.equal(summary.scope, 'orders.read orders.write');
      assert.equal(typeof summary.expiresIn, 'number');
      assert.equal(typeof summary.tookMs, 'number');
      assert.match(String(summary.accessToken), MASKED);
      assert.ok(String(summary.accessToken).startsWith(token.slice(0, 6)));
      assert.ok(!result.stdout.includes(token) && !result.stderr.includes(token), 'the full token is printed');
      assert.ok(!result.stdout.includes(SECRET));
    });

    it('prints the token with --show-token', async () => {
      const result = await runCli(['token', 'orders', '--config', configFile, '--show-token'], env);
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.equal(summary.accessToken, issued.at(-1));
      assert.equal((await oidc.introspect(String(summary.accessToken))).active, true);
    });

    it('bypasses any cache: each run asks the token endpoint', async () => {
      const before = oidc.tokenRequests;
      for (let i = 0; i < 2; i++) assert.equal((await runCli(['token', 'orders', '--config', configFile], env)).code, 0);
      assert.equal(oidc.tokenRequests, before + 2);
    });

    it('sends --param overrides in the token request', async () => {
      const result = await runCli(['token', 'orders', '--config', configFile, '--param', 'scope=orders.read', '--show-token'], env);
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.equal(summary.scope, 'orders.read');
      assert.equal((await oidc.introspect(String(summary.accessToken))).scope, 'orders.read');
    });

    it('exits 1 for an unknown connection and names the known ones', async () => {
      const result = await runCli(['token', 'nope', '--config', configFile], env);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /unknown connection "nope"; known: orders, broken/);
    });

    it('exits 1 with invalid_client when the server refuses the secret, without printing it', async () => {
      const result = await runCli(['token', 'broken', '--config', configFile], env);
      assert.equal(result.code, 1);
      const summary = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.equal(summary.ok, false);
      assert.equal(summary.code, 'TOKEN_REJECTED');
      assert.equal(summary.oauthError, 'invalid_client');
      assert.equal(summary.reason, 'invalid_client');
      assert.equal(summary.httpStatus, 401);
      assert.ok(!`${result.stdout}${result.stderr}`.includes(WRONG_SECRET));
    });

    it('exits 2 on bad usage', async () => {
      for (const args of [
        ['token'],
        ['token', 'a', 'b'],
        ['token', 'orders', '--param', 'scope'],
        ['token', 'orders', '--bogus'],
        ['frobnicate'],
      ]) {
        const result = await runCli([...args, '--config', configFile], env);
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, /usage:/);
      }
    });
  });

  describe('admin listener', () => {
    it('GET /connections lists each connection and its token status, never a token', async () => {
      const before = (await (await fetch(`${gw.admin}/connections`)).json()) as { connections: Record<string, unknown>[] };
      assert.deepEqual(
        before.connections.map((c) => [c.connection, c.displayName, c.tokenCached]),
        [
          ['orders', 'Orders API', false],
          ['broken', 'broken', false],
        ],
      );
      assert.equal((await fetch(`${gw.url}/orders/1`)).status, 200);
      const token = upstream.received.at(-1)!.headers.authorization!.replace(/^Bearer /, '');
      const response = await fetch(`${gw.admin}/connections`);
      const text = await response.text();
      assert.equal(response.status, 200);
      assert.ok(!text.includes(token), 'a token in /connections');
      const orders = (JSON.parse(text) as { connections: Record<string, unknown>[] }).connections[0]!;
      assert.equal(orders.tokenCached, true);
      assert.equal(orders.tokenEndpoint, oidc.tokenUrl);
      assert.equal(orders.clientAuth, 'client_secret_basic');
      assert.ok(Number(orders.expiresInSeconds) > 0);
    });

    it('POST /connections/KEY/test fetches a fresh token and reports it masked', async () => {
      const before = oidc.tokenRequests;
      const response = await fetch(`${gw.admin}/connections/orders/test`, { method: 'POST' });
      const text = await response.text();
      assert.equal(response.status, 200);
      assert.equal(oidc.tokenRequests, before + 1);
      const summary = JSON.parse(text) as Record<string, unknown>;
      assert.equal(summary.ok, true);
      assert.match(String(summary.accessToken), MASKED);
      assert.ok(!text.includes(issued.at(-1)!));
    });

    it('POST /connections/KEY/test reports invalid_client with 502, and 404 for an unknown key', async () => {
      const refused = await fetch(`${gw.admin}/connections/broken/test`, { method: 'POST' });
      assert.equal(refused.status, 502);
      const summary = (await refused.json()) as Record<string, unknown>;
      assert.equal(summary.code, 'TOKEN_REJECTED');
      assert.equal(summary.oauthError, 'invalid_client');
      const unknown = await fetch(`${gw.admin}/connections/nope/test`, { method: 'POST' });
      assert.equal(unknown.status, 404);
    });
  });
});
