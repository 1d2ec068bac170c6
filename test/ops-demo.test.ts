/**
 * The demo (scripts/demo.ts; `npm run demo` builds first, npm test already has): its printed curl
 * line reaches the echo upstream with an injected token, and Ctrl-C or SIGTERM stops the whole tree.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { ROOT } from './support/processes.js';

const CURL = /^\s*curl -s (http:\/\/\S+\/echo\/\S*)$/;
const CONFIG = /^\s*config\s+(\S+)$/;
const ADDRESS = /(http:\/\/127\.0\.0\.1:\d+)/g;
/** The "More:" line that lists the connections through the admin API, with the printed admin key. */
const ADMIN_CURL = /curl -s -H 'Authorization: Bearer (\S+)' (http:\/\/\S+\/connections)$/m;

interface Demo {
  child: ChildProcessWithoutNullStreams;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  url: string;
  configFile: string;
  /** Every address the demo printed: authorization server, upstream, gateway, admin. */
  addresses: string[];
  output: string[];
}

/** Starts the demo in a process group of its own (as a terminal would) and waits for the lines it prints once running. */
async function startDemo(): Promise<Demo> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: ROOT, detached: true, stdio: 'pipe' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('close', (code, signal) => done({ code, signal })),
  );
  const output: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  let configFile = '';
  let url: string | undefined;
  const addresses = new Set<string>();
  for await (const line of createInterface({ input: child.stdout })) {
    output.push(line);
    for (const [address] of line.matchAll(ADDRESS)) addresses.add(address);
    configFile = CONFIG.exec(line)?.[1] ?? configFile;
    url = CURL.exec(line)?.[1] ?? url;
    // The last line of the block the demo prints once everything runs.
    if (url !== undefined && line.includes('Ctrl-C stops everything')) {
      // Keep draining stdout so the demo never blocks on a full pipe.
      child.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
      return { child, exited, url, configFile, addresses: [...addresses], output };
    }
  }
  throw new Error(`the demo printed no curl line:\n${output.join('\n')}`);
}

/** The pids of a process's children (Linux /proc). */
function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .split(' ')
    .filter((p) => p !== '')
    .map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function refused(address: string): Promise<boolean> {
  try {
    await fetch(address, { signal: AbortSignal.timeout(2_000) });
    return false;
  } catch (error) {
    return ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
  }
}

describe('npm run demo', { timeout: 60_000 }, () => {
  const stops = [
    // Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
    { name: 'Ctrl-C (SIGINT to the process group)', stop: (demo: Demo) => process.kill(-demo.child.pid!, 'SIGINT') },
    { name: 'SIGTERM to the demo', stop: (demo: Demo) => demo.child.kill('SIGTERM') },
  ];
  for (const { name, stop } of stops) {
    it(`prints a curl line that shows the injected token; ${name} stops everything`, async () => {
      const demo = await startDemo();
      try {
        const response = await fetch(demo.url);
        assert.equal(response.status, 200, demo.output.join('\n'));
        const echoed = (await response.json()) as { url: string; authorization: string | null };
        assert.equal(echoed.url, '/orders/42');
        assert.match(String(echoed.authorization), /^Bearer [A-Za-z0-9_-]{20,}$/);
        assert.equal(demo.addresses.length, 4, demo.output.join('\n'));
        // The admin API line works as printed too: the key it carries is the one the demo made.
        const more = ADMIN_CURL.exec(demo.output.join('\n'));
        assert.ok(more !== null, demo.output.join('\n'));
        const connections = await fetch(more[2]!, { headers: { authorization: `Bearer ${more[1]}` } });
        assert.equal(connections.status, 200, await connections.clone().text());
        const listed = (await connections.json()) as { connections: { connection: string }[] };
        assert.deepEqual(
          listed.connections.map((c) => c.connection),
          ['demo'],
        );
        const children = childrenOf(demo.child.pid!);
        assert.equal(children.length, 1, 'the gateway child');

        stop(demo);
        assert.deepEqual(await demo.exited, { code: 0, signal: null }, demo.output.join('\n'));
        assert.ok(demo.output.some((line) => line.includes('demo stopped')));
        assert.ok(
          demo.output.some((line) => line.includes('tokengate stopped')),
          'the gateway did not drain',
        );
        for (const pid of children) assert.equal(alive(pid), false, `child ${pid} outlived the demo`);
        for (const address of demo.addresses) assert.ok(await refused(address), `${address} still answers`);
        assert.equal(existsSync(demo.configFile), false, 'the generated config was left behind');
      } finally {
        try {
          process.kill(-demo.child.pid!, 'SIGKILL'); // whatever a failed test left of the group
        } catch {
          // ESRCH: nothing left, as it should be.
        }
      }
    });
  }
});
