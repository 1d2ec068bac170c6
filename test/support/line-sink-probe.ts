/**
 * Run by test/log-sink.test.ts in a child process whose stdout is the pipe under test.
 *   burst N      writes N numbered lines at once, then exits on its own
 *   trickle      writes one line, then idles for 5 s (the parent reads it meanwhile and kills it)
 *   flood N      writes N 1 KiB lines into a 1 MiB budget while the parent does not read, reports
 *                on stderr how many were dropped, then, once the parent reads, writes one more line
 *   orphan       writes lines after the parent closed its end of the pipe, then reports on stderr
 */
import { LineSink } from '../../src/observability/log-sink.js';

const [mode, count] = [process.argv[2], Number(process.argv[3] ?? 0)];
const sink = new LineSink({ fd: 1, flushIntervalMs: 100, maxBufferedBytes: 1024 * 1024, dropNotice: (dropped) => `dropped ${dropped}\n` });
const pad = 'x'.repeat(1000);

if (mode === 'burst') {
  for (let i = 0; i < count; i++) sink.write(`line ${i}\n`);
} else if (mode === 'trickle') {
  sink.write('first\n');
  setTimeout(() => undefined, 5_000);
} else if (mode === 'flood') {
  for (let i = 0; i < count; i++) sink.write(`line ${i} ${pad}\n`);
  setTimeout(() => {
    process.stderr.write(`${JSON.stringify({ dropped: sink.dropped })}\n`);
    // The parent starts reading once it has this report; the next line carries the drop notice.
    process.stdin.once('data', () => {
      sink.write('after\n');
      sink.flush();
    });
  }, 50);
} else if (mode === 'orphan') {
  process.stdin.once('data', () => {
    for (let i = 0; i < 1000; i++) sink.write(`line ${i} ${pad}\n`);
    sink.flush();
    setTimeout(() => {
      for (let i = 0; i < 10; i++) sink.write('more\n');
      process.stderr.write(`${JSON.stringify({ alive: true, dropped: sink.dropped })}\n`);
    }, 200);
  });
}
