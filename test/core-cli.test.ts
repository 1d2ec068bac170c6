/** `node dist/cli.js serve` end to end: a real process proxies with tokens from oidc-provider. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeConfig } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECRET = 'cli-serve-secret-0123456789';

describe('tokengate serve', () => {
  let oidc: OidcServer;
  let upstream: TestServer;

  before(async () => {
    oidc = await startOidcProvider([{ client_id: 'cli-client', client_secret: SECRET }]);
    upstream = await startEchoUpstream();
  });

  after(async () => {
    await upstream.close();
    await oidc.close();
  });

  it('serves $TOKENGATE_CONFIG, injects the issued token, and exits 0 on SIGTERM', { timeout: 30_000 }, async () => {
    const { configFile } = writeConfig(`
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
secrets: { s: { env: TG_CLI_SECRET } }
connections:
  c: { clientId: cli-client, tokenUrl: ${oidc.tokenUrl}, clientSecret: { secret: s } }
routes:
  - { name: r, match: { pathPrefix: /api }, upstream: ${upstream.url}, stripPrefix: true, auth: { connection: c } }
`);
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'serve'], {
      cwd: ROOT,
      env: { ...process.env, TOKENGATE_CONFIG: configFile, TG_CLI_SECRET: SECRET, LOG_PRETTY: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      let proxy: string | undefined;
      for await (const line of createInterface({ input: child.stdout })) {
        const entry = JSON.parse(line) as { event?: string; proxy?: string };
        if (entry.event === 'started') {
          proxy = entry.proxy;
          break;
        }
      }
      child.stdout.resume();
      assert.ok(proxy, `the gateway reported where it listens; stderr: ${stderr}`);
      const response = await fetch(`${proxy}/api/orders?id=1`);
      assert.equal(response.status, 200);
      const seen = upstream.received.at(-1)!;
      assert.equal(seen.url, '/orders?id=1');
      const introspection = await oidc.introspect(seen.headers.authorization!.replace(/^Bearer /, ''));
      assert.equal(introspection.active, true);
      assert.equal(introspection.client_id, 'cli-client');
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  });
});
