/** nginx as a reference row in the benchmark, when it is installed: one worker, upstream keep-alive. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATIC_AUTHORIZATION } from './peers/announce.js';
import { freePort, PINNING, spawnServer, type Peer } from './support.js';

export function hasNginx(): boolean {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A static Authorization header, as the baselines send. `/api/` is stripped like the gateway's
 * bench route; `decoys` more prefix locations (`/r0/` ...) stand for a config of that many routes.
 */
function nginxConf(prefix: string, port: number, upstreamPort: number, decoys: number): string {
  const proxy = `proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Authorization "${STATIC_AUTHORIZATION}";`;
  const decoyLines = Array.from({ length: decoys }, (_, i) => `    location /r${i}/ { return 404; }`);
  return `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
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

/** Starts nginx in a directory of its own under `work`; its URL is the origin. */
export async function startNginx(work: string, upstreamPort: number, decoys = 0): Promise<Peer> {
  const port = await freePort();
  const prefix = join(work, `nginx-${port}`);
  mkdirSync(prefix);
  writeFileSync(join(prefix, 'nginx.conf'), nginxConf(prefix, port, upstreamPort, decoys));
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
