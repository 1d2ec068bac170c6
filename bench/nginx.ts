/** nginx as a reference row in the benchmark, when it is installed: one worker, upstream keep-alive. */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATIC_AUTHORIZATION } from './peers/announce.js';
import { freePort, pin, PINNING, spawnServer, type Peer } from './support.js';

export function hasNginx(): boolean {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * nginx's access log as tokengate's: one JSON line per request with the same fields, into a named
 * pipe read by a `cat` of its own on the load generator's CPU (as the gateway's stdout is read),
 * buffered as tokengate buffers its lines (64 KiB chunks, flushed at least every 100 ms:
 * src/observability/log-sink.ts). nginx cannot open /dev/stdout when it is a socket, which is what
 * node gives a child for a pipe, hence the named pipe.
 */
function accessLog(fifo: string): string {
  return `log_format tokengate escape=json '{"level":30,"time":$msec,"service":"nginx","event":"access","route":"bench",'
    '"method":"$request_method","status":$status,"durationSeconds":$request_time,"requestId":"$request_id",'
    '"upstreamStatus":"$upstream_status","msg":"request"}';
  access_log ${fifo} tokengate buffer=64k flush=100ms;`;
}

/**
 * A static Authorization header, as the baselines send. `/api/` is stripped like the gateway's
 * bench route; `decoys` more prefix locations (`/r0/` ...) stand for a config of that many routes.
 * With `accessLog`, a line per request as tokengate writes one (ACCESS_LOG), else none.
 */
function nginxConf(prefix: string, port: number, upstreamPort: number, decoys: number, fifo: string | undefined): string {
  const proxy = `proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Authorization "${STATIC_AUTHORIZATION}";`;
  const decoyLines = Array.from({ length: decoys }, (_, i) => `    location /r${i}/ { return 404; }`);
  return `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
http {
  ${fifo === undefined ? 'access_log off;' : accessLog(fifo)}
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  upstream bench { server 127.0.0.1:${upstreamPort}; keepalive 256; }
  server {
    listen 127.0.0.1:${port};
${decoyLines.join('\n')}
    location /api/ { proxy_pass http://bench/; ${proxy} }
    location / { proxy_pass http://bench; ${proxy} }
  }
}
`;
}

/**
 * Starts nginx in a directory of its own under `work`; its URL is the origin. Its access log is on,
 * as the gateway's is by default (issue 28 compares the two that way); `accessLog: false` turns it off.
 */
export async function startNginx(work: string, upstreamPort: number, decoys = 0, accessLog = true): Promise<Peer> {
  const port = await freePort();
  const prefix = join(work, `nginx-${port}`);
  mkdirSync(prefix);
  let fifo: string | undefined;
  if (accessLog) {
    fifo = join(prefix, 'access.fifo');
    execFileSync('mkfifo', [fifo]);
    // It reads until nginx, the only writer, exits.
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'ignore', 'inherit'] });
    pin(reader.pid, PINNING?.load);
  }
  writeFileSync(join(prefix, 'nginx.conf'), nginxConf(prefix, port, upstreamPort, decoys, fifo));
  return spawnServer(
    'nginx',
    'nginx',
    ['-p', prefix, '-c', join(prefix, 'nginx.conf')],
    port,
    `http://127.0.0.1:${port}/api/items/42`,
    'ignore',
    PINNING?.server,
  );
}
