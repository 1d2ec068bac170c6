/**
 * Debian's nginx as the reference reverse proxy of the differential suite: started from a config
 * written to a temp folder (one worker, in the foreground, every path it writes inside that folder)
 * and configured as a plain reverse proxy in front of one upstream, as an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { programPath } from './programs.js';
import { freePort } from './servers.js';

export interface Nginx {
  port: number;
  url: string;
  dir: string;
  /** nginx's error log so far (for a failing case's report). */
  errorLog(): string;
  /** Stops nginx and removes its folder. */
  stop(): Promise<void>;
}

/**
 * The config, each directive with the reason it is there. Nothing else is set: every other
 * behaviour is nginx's default, which is what the suite compares against.
 */
export function nginxConfig(dir: string, port: number, upstreamPort: number): string {
  return `
# One worker: requests reach the upstream in the order the test sends them.
worker_processes 1;
# In the foreground, so the test owns the process and stops it by its pid.
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  # Every file nginx may write stays in the temp folder (the defaults are under /var/lib/nginx).
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # tokengate sets no limit of its own on a body's size (nginx's default is 1 MiB).
  client_max_body_size 0;
  # Keep-alive upstream connections, as a reverse proxy in production has them.
  upstream recording {
    server 127.0.0.1:${upstreamPort};
    keepalive 8;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      # No URI part: the request target goes upstream as the client sent it.
      proxy_pass http://recording;
      # HTTP/1.1 upstream: keep-alive, and a chunked request body passed on chunked.
      proxy_http_version 1.1;
      # No "Connection: close" upstream (nginx's default), or keep-alive would not be reused.
      proxy_set_header Connection "";
      # The upstream's own authority, as tokengate sends it (the default would be "recording").
      proxy_set_header Host 127.0.0.1:${upstreamPort};
      # Streaming both ways, as tokengate does: no body is held before it is passed on.
      proxy_request_buffering off;
      proxy_buffering off;
      # The usual X-Forwarded-* a reverse proxy adds.
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
    }
  }
}
`;
}

function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Starts nginx in front of the upstream on `upstreamPort`, and waits until it accepts connections. */
export async function startNginx(upstreamPort: number): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-nginx-'));
  // Run as root, nginx's worker switches to an unprivileged user, which must reach the temp paths.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const configFile = join(dir, 'nginx.conf');
  writeFileSync(configFile, nginxConfig(dir, port, upstreamPort));
  // -e: the error log before the config is read (the default is under /var/log/nginx).
  const child: ChildProcess = spawn(programPath('nginx'), ['-p', dir, '-c', configFile, '-e', join(dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let running = true;
  void exited.then(() => (running = false));
  while (!(await listening(port))) {
    if (!running) throw new Error(`nginx exited at start: ${stderr}`);
    await new Promise((done) => setTimeout(done, 20));
  }
  const errorLog = () => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    errorLog,
    stop: async () => {
      // SIGTERM: nginx's fast shutdown; the master waits for its worker before it exits.
      if (running) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
