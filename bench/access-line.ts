/**
 * Micro-benchmark of the per-request bookkeeping after an answer: the access line (built and
 * buffered in a LineSink writing to /dev/null) and the two metric calls (the duration histogram's
 * observe, the request count). CPU ns per call (this
 * process's CPU time, so other processes on the machine barely move it), the least of 7 runs.
 *
 *   node --import tsx bench/access-line.ts
 */
import { openSync } from 'node:fs';
import { Histogram, Registry } from 'prom-client';
import { AccessLog, createLogger } from '../src/observability/log.js';
import { LineSink } from '../src/observability/log-sink.js';
import { Metrics } from '../src/observability/metrics.js';

const CALLS = 1_000_000;
const REQUEST_ID = '6f1c2b0e-6a8e-4c39-9d5e-2f7a1b3c4d5e';

function nsPerCall(call: (i: number) => void): number {
  const runs: number[] = [];
  for (let run = 0; run < 8; run++) {
    const started = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) call(i);
    const used = process.cpuUsage(started);
    if (run > 0) runs.push(((used.user + used.system) * 1000) / CALLS);
  }
  return Math.min(...runs);
}

const sink = new LineSink({
  fd: openSync('/dev/null', 'w'),
  flushIntervalMs: 100,
  maxBufferedBytes: 16 * 1024 * 1024,
  dropNotice: () => '',
});
const access = new AccessLog(createLogger({ level: 'info', destination: sink }), 'bench');
console.log(
  `access line (info):      ${nsPerCall((i) => access.write('info', 'GET', 200, 1.234 + (i & 7), REQUEST_ID, 200)).toFixed(0)} ns`,
);

const registry = new Registry();
const duration = new Histogram({
  name: 'd',
  help: 'd',
  labelNames: ['route'],
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
}).labels({ route: 'bench' });
const metrics = new Metrics();
const counts = metrics.requestCounts('bench');
console.log(`duration observe:        ${nsPerCall((i) => duration.observe(0.001234 + (i & 7) / 1000)).toFixed(0)} ns`);
console.log(`request count:           ${nsPerCall((i) => counts.count('GET', i & 1 ? 200 : 404)).toFixed(0)} ns`);
