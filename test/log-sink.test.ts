import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const PROBE = join(dirname(fileURLToPath(import.meta.url)), 'support', 'line-sink-probe.ts');

type Probe = ChildProcessByStdio<Writable, Readable, Readable>;

function start(...args: string[]): Probe {
  return spawn(process.execPath, ['--import', 'tsx', PROBE, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** The first line the child writes to stderr, parsed. */
async function report<T>(child: Probe): Promise<T> {
  let text = '';
  for await (const chunk of child.stderr) {
    text += String(chunk);
    const end = text.indexOf('\n');
    if (end >= 0) return JSON.parse(text.slice(0, end)) as T;
  }
  throw new Error(`the probe ended without a report: ${text}`);
}

describe('LineSink (the stdout log buffer)', () => {
  it('delivers every line, in order, when the process ends on its own', async () => {
    const child = start('burst', '50000');
    const [text, [code]] = await Promise.all([readAll(child.stdout), once(child, 'exit') as Promise<[number | null]>]);
    assert.equal(code, 0);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 50_000);
    lines.forEach((line, i) => assert.equal(line, `line ${i}`));
  });

  it('writes a lone line within the flush interval, without waiting for its chunk to fill', async () => {
    const child = start('trickle');
    try {
      const [chunk] = (await Promise.race([
        once(child.stdout, 'data'),
        new Promise((_, fail) => setTimeout(() => fail(new Error('no line within 3 s')), 3_000)),
      ])) as [Buffer];
      assert.equal(String(chunk), 'first\n');
    } finally {
      child.kill();
    }
  });

  it('drops lines beyond its budget while nobody reads, stays responsive, and says how many it dropped', async () => {
    const written = 20_000;
    const child = start('flood', String(written));
    // Nobody reads stdout until the child has reported: a blocking writer would never report.
    const { dropped } = await report<{ dropped: number }>(child);
    assert.ok(dropped > 0, 'a 20 MB flood into a 1 MiB budget drops lines');
    const reading = readAll(child.stdout);
    child.stdin.end('go');
    const lines = (await reading).trimEnd().split('\n');
    assert.equal(lines.at(-1), 'after');
    assert.equal(lines.at(-2), `dropped ${dropped}`);
    const delivered = lines.filter((line) => line.startsWith('line '));
    assert.equal(delivered.length + dropped, written);
    // Whatever was kept is a prefix, in order: lines are dropped at the tail, never reordered.
    delivered.forEach((line, i) => assert.ok(line.startsWith(`line ${i} `), line.slice(0, 20)));
  });

  it('survives a reader that has gone away (EPIPE): the lines are dropped, the process lives on', async () => {
    const child = start('orphan');
    child.stdout.destroy();
    child.stdin.write('go');
    const { alive, dropped } = await report<{ alive: boolean; dropped: number }>(child);
    assert.equal(alive, true);
    assert.ok(dropped >= 10, `dropped ${dropped}`);
    child.stdin.end();
    child.kill();
    await once(child, 'exit');
  });
});
