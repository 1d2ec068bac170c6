/**
 * Where a CPU profile's busy time goes, by category: `node --import tsx bench/profile-categories.ts
 * <file.cpuprofile>` (a profile from `node --import tsx bench/cpu.ts --profile`). Each sample goes to
 * the category of the nearest frame, from the leaf up, that belongs to one; socket system calls and
 * GC by the leaf itself. Shares are of the non-idle time.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const LEAVES: Array<[RegExp, string]> = [
  [
    /^(writev|writeLatin1String|writeUtf8String|writeBuffer|writeBuffers|readStart|readStop|close|shutdown)$/,
    'socket system calls (kernel)',
  ],
  [/^\(garbage collector\)$/, 'GC'],
  [/^\(program\)$/, 'V8/native, unattributed'],
];
const FRAMES: Array<[RegExp, string]> = [
  [/\/dist\/observability\/(log|log-sink|access-line)\.js|\/pino|sonic-boom/, 'logging (access line)'],
  [/prom-client|\/dist\/observability\/(metrics|plain-counts)\.js/, 'metrics'],
  [/\/dist\/proxy\/headers\.js/, 'header rebuilding'],
  [/\/dist\/routing\//, 'routing'],
  [/\/dist\/tokens\/|node-cache/, 'token lookup'],
  [/\/dist\/tracing\//, 'tracing (off)'],
  [/\/dist\/proxy\/http1\//, 'upstream client (http1/: request head, answer parse)'],
  [/undici/, 'undici'],
  [/\/dist\/(proxy|observability|runtime)\//, 'gateway handler (own code)'],
  [/node:_http_(common|incoming)|^node:_http_server$/, 'node HTTP server (parse, response write)'],
  [/node:_http_outgoing/, 'node HTTP server (parse, response write)'],
  [/node:internal\/timers|node:timers/, 'timers'],
  [/node:net|node:internal\/streams|node:stream|node:internal\/stream_base_commons|node:events/, 'node sockets and streams'],
  [/node:internal\/modules|node:internal\/bootstrap/, 'start-up (module loading)'],
];

const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

function category(leaf: ProfileNode): string {
  for (const [pattern, name] of LEAVES) if (pattern.test(leaf.callFrame.functionName)) return name;
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const { url, functionName } = byId.get(id)!.callFrame;
    if (url === '' && functionName === '(idle)') return 'idle';
    for (const [pattern, name] of FRAMES) if (pattern.test(url)) return name;
  }
  return 'other (event loop, streams, ticks)';
}

const totals = new Map<string, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const name = category(byId.get(profile.samples[i]!)!);
  totals.set(name, (totals.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const idle = totals.get('idle') ?? 0;
totals.delete('idle');
const busy = [...totals.values()].reduce((sum, t) => sum + t, 0);
console.log(`| category | share of busy time |\n| --- | ---: |`);
for (const [name, t] of [...totals].sort((a, b) => b[1] - a[1])) console.log(`| ${name} | ${((t / busy) * 100).toFixed(1)} % |`);
console.log(`\nbusy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s`);
