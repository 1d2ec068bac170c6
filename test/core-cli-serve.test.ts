/** `node dist/cli.js serve` keeps its documented exit codes when it cannot start (npm test builds dist/ first). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { writeConfig } from './support/gateway.js';
import { CLI, ROOT, runCli, type CliResult } from './support/processes.js';

/** Runs the CLI; a child still running after `limitMs` is killed and reported with code null. */
async function runWithLimit(args: string[], limitMs: number): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const limit = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(limit);
  return { code, stdout, stderr };
}

describe('serve when a port is taken', () => {
  let blocker: net.Server;
  let takenPort: number;

  before(async () => {
    blocker = net.createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    takenPort = (blocker.address() as AddressInfo).port;
  });

  after(() => {
    blocker.close();
  });

  for (const taken of ['listen', 'admin'] as const) {
    it(`exits 1 naming EADDRINUSE when the ${taken} port is taken, instead of staying up on the other listener`, async () => {
      const ports = { listen: taken === 'listen' ? takenPort : 0, admin: taken === 'admin' ? takenPort : 0 };
      const { configFile } = writeConfig(`
listen: { host: 127.0.0.1, port: ${ports.listen} }
admin: { host: 127.0.0.1, port: ${ports.admin} }
routes: []
`);
      const result = await runWithLimit(['serve', '--config', configFile], 10_000);
      assert.equal(result.code, 1, `serve did not exit 1 by itself; stderr: ${result.stderr}`);
      assert.match(result.stderr, /EADDRINUSE/);
    });
  }
});

describe('the config file default', () => {
  it('treats an empty TOKENGATE_CONFIG as unset and falls back to config/gateway.yaml', async () => {
    const env = { ...process.env, TOKENGATE_CONFIG: '' };
    for (const name of Object.keys(env)) if (name.startsWith('PARTNER_')) delete env[name];
    const result = await runCli(['validate'], env);
    assert.match(`${result.stdout}${result.stderr}`, /config\/gateway\.yaml/);
    assert.doesNotMatch(result.stderr, /EISDIR/);
  });
});
