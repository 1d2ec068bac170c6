/**
 * Checks the Docker image recipe without a Docker engine: reads the Dockerfile and runs its own
 * steps (COPY, RUN, ENV, WORKDIR, USER, ENTRYPOINT + CMD, HEALTHCHECK) in temp folders, one per
 * stage, with this machine's Node.js standing in for the base image. Then starts the final stage
 * with a config at $TOKENGATE_CONFIG (secrets from env and from a file), waits for /healthz, runs
 * the HEALTHCHECK command itself, stops the gateway with SIGTERM (exit 0 expected) and checks that
 * the HEALTHCHECK then fails. npm uses its cache first (prefer-offline).
 *
 *   node --import tsx scripts/check-image.ts      (.ci/run calls it before npm test)
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
/** The node user of the official node images. */
const IMAGE_USERS: Record<string, number> = { root: 0, node: 1000 };

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
  /** Host folder standing in for the stage's file system root. */
  root: string;
}

const started = performance.now();
const step = (text: string) => process.stdout.write(`check-image [${((performance.now() - started) / 1000).toFixed(1)}s] ${text}\n`);

class CheckFailed extends Error {}
function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}

/** Instructions with continuation lines joined and comments dropped. */
function parseDockerfile(text: string, workspace: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    if (full === '') continue;
    const [op = '', ...rest] = full.split(/\s+/);
    const args = full.slice(op.length).trim();
    if (op.toUpperCase() === 'FROM') {
      const name = /\s+AS\s+(\S+)$/i.exec(args)?.[1] ?? `stage-${stages.length}`;
      stages.push({ name, image: rest[0] ?? '', instructions: [], root: join(workspace, name) });
      continue;
    }
    check(stages.length > 0, `${op} before FROM`);
    stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** .dockerignore patterns (Go filepath.Match, rooted at the context) as a predicate on relative paths. */
function dockerignore(): (path: string) => boolean {
  const file = join(ROOT, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#'))
    : [];
  const regexps = patterns.map(
    (p) =>
      new RegExp(
        `^${p
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*/g, '\u0000')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/\u0000/g, '.*')}(/.*)?$`,
      ),
  );
  return (path) => regexps.some((r) => r.test(path));
}

const hostPath = (stage: Stage, containerPath: string) => join(stage.root, containerPath);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** Splits `A=1 B=2` (ENV); values may be double-quoted. */
function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [, key, quoted, plain] of args.matchAll(/(\w+)=(?:"([^"]*)"|(\S*))/g)) out[key!] = quoted ?? plain ?? '';
  return out;
}

function execForm(args: string, what: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  check(
    Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'),
    `${what} must use the exec form (a JSON array) so signals reach node`,
  );
  return parsed;
}

interface Runtime {
  stage: Stage;
  env: Record<string, string>;
  workdir: string;
  user: string | undefined;
  command: string[];
  healthcheck: string[] | undefined;
}

/** Runs every stage's build steps and returns how the final stage starts. */
function build(stages: Stage[]): Runtime {
  const ignored = dockerignore();
  let runtime: Runtime | undefined;
  for (const stage of stages) {
    step(`stage ${stage.name} (${stage.image})`);
    const env: Record<string, string> = {};
    let workdir = '/';
    let user: string | undefined;
    let entrypoint: string[] = [];
    let cmd: string[] = [];
    let healthcheck: string[] | undefined;
    mkdirSync(stage.root, { recursive: true });
    const inStage = (path: string) => (posix.isAbsolute(path) ? path : posix.join(workdir, path));
    for (const { op, args } of stage.instructions) {
      switch (op) {
        case 'WORKDIR':
          workdir = inStage(args);
          mkdirSync(hostPath(stage, workdir), { recursive: true });
          break;
        case 'ENV':
          Object.assign(env, parseEnv(args));
          break;
        case 'COPY': {
          step(`  COPY ${args}`);
          const words = args.split(/\s+/);
          const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
          const [dest = '', ...sources] = words.filter((w) => !w.startsWith('--')).reverse();
          sources.reverse();
          const source = from === undefined ? undefined : stages.find((s) => s.name === from);
          check(from === undefined || source !== undefined, `COPY --from=${from}: no such stage`);
          const target = hostPath(stage, inStage(dest));
          const intoFolder = dest.endsWith('/') || sources.length > 1;
          for (const src of sources) {
            const origin = source === undefined ? join(ROOT, src) : hostPath(source, posix.isAbsolute(src) ? src : posix.join('/', src));
            if (source === undefined) check(!ignored(relative(ROOT, origin)), `COPY ${src}: excluded by .dockerignore`);
            check(existsSync(origin), `COPY ${src}: not found`);
            const to = intoFolder && !statSync(origin).isDirectory() ? join(target, basename(origin)) : target;
            mkdirSync(dirname(to), { recursive: true });
            cpSync(origin, to, { recursive: true, filter: (p) => source !== undefined || !ignored(relative(ROOT, p)) });
          }
          break;
        }
        case 'RUN': {
          step(`  RUN ${args}`);
          const result = spawnSync('sh', ['-c', args], {
            cwd: hostPath(stage, workdir),
            env: {
              PATH: process.env.PATH ?? '',
              HOME: process.env.HOME ?? '/root',
              ...env,
              npm_config_prefer_offline: 'true',
              npm_config_update_notifier: 'false',
            },
            stdio: ['ignore', 'inherit', 'inherit'],
          });
          check(result.status === 0, `RUN ${args}: exit ${result.status ?? result.signal}`);
          break;
        }
        case 'USER':
          user = args;
          break;
        case 'ENTRYPOINT':
          entrypoint = execForm(args, 'ENTRYPOINT');
          break;
        case 'CMD':
          cmd = execForm(args, 'CMD');
          break;
        case 'HEALTHCHECK': {
          const at = args.indexOf('CMD ');
          check(at >= 0, 'HEALTHCHECK needs CMD');
          healthcheck = execForm(args.slice(at + 4).trim(), 'HEALTHCHECK CMD');
          break;
        }
        case 'EXPOSE':
          break;
        default:
          throw new CheckFailed(`instruction ${op} is not understood by this check; extend scripts/check-image.ts`);
      }
    }
    runtime = { stage, env, workdir, user, command: [...entrypoint, ...cmd], healthcheck };
  }
  check(runtime !== undefined, 'no FROM in the Dockerfile');
  return runtime;
}

function checkRecipe(stages: Stage[], runtime: Runtime): void {
  check(stages.length >= 2, 'a multi-stage build is expected');
  const major = process.versions.node.split('.')[0];
  for (const stage of stages)
    check(
      stage.image.startsWith(`node:${major}`),
      `${stage.image}: this check runs Node ${major}, so it only stands in for node:${major} images`,
    );
  check(runtime.user !== undefined && runtime.user !== 'root' && runtime.user !== '0', 'the final stage must set a non-root USER');
  check(runtime.healthcheck?.join(' ').includes('/healthz'), 'HEALTHCHECK must probe /healthz');
  check(runtime.env.TOKENGATE_CONFIG !== undefined, 'ENV TOKENGATE_CONFIG (the documented config path) is missing');
  const app = hostPath(runtime.stage, runtime.workdir);
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies?: Record<string, string> };
  for (const name of Object.keys(manifest.devDependencies ?? {}))
    check(!existsSync(join(app, 'node_modules', name)), `dev dependency ${name} is in the final image`);
  check(!existsSync(join(app, 'src')), 'TypeScript sources are in the final image');
  step(`recipe: ${stages.length} stages, USER ${runtime.user}, no dev dependencies, HEALTHCHECK on /healthz`);
}

async function start(runtime: Runtime): Promise<void> {
  const { stage } = runtime;
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const configPath = runtime.env.TOKENGATE_CONFIG!;
  const configHost = hostPath(stage, configPath);
  mkdirSync(dirname(configHost), { recursive: true });
  // As an operator mounts it: ports from the environment, one secret from env, one from a file.
  writeFileSync(join(dirname(configHost), 'partner.secret'), 'secret-from-a-mounted-file\n');
  writeFileSync(
    configHost,
    `listen:
  host: 127.0.0.1
  port: \${TOKENGATE_PORT:-8080}
admin:
  host: 127.0.0.1
  port: \${TOKENGATE_ADMIN_PORT:-9090}
secrets:
  from-env: { env: PARTNER_CLIENT_SECRET }
  from-file: { file: partner.secret }
connections:
  partner:
    clientId: gateway-client
    tokenUrl: https://auth.partner.example/oauth2/token
    clientSecret: { secret: from-env }
  partner-post:
    clientId: gateway-client
    tokenUrl: https://auth.partner.example/oauth2/token
    clientSecret: { secret: from-file, method: client_secret_post }
routes:
  - name: partner
    match: { pathPrefix: /partner }
    upstream: https://api.partner.example
    auth: { connection: partner }
`,
  );
  // `docker run -e ...`: the image's ENV with absolute paths inside the stage, plus the operator's.
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: '/tmp' };
  for (const [key, value] of Object.entries(runtime.env)) env[key] = value.startsWith('/') ? hostPath(stage, value) : value;
  Object.assign(env, {
    TOKENGATE_PORT: String(proxyPort),
    TOKENGATE_ADMIN_PORT: String(adminPort),
    PARTNER_CLIENT_SECRET: 'secret-from-the-environment',
    LOG_LEVEL: 'warn',
  });
  const uid = process.getuid?.() === 0 ? (IMAGE_USERS[runtime.user!] ?? Number(runtime.user)) : undefined;
  if (uid !== undefined) chmodSync(dirname(stage.root), 0o755); // mkdtemp is 0700: let the image user in
  const as = uid === undefined ? {} : { uid, gid: uid };
  step(
    `start: ${runtime.command.join(' ')} as ${uid === undefined ? 'the current user' : `uid ${uid} (USER ${runtime.user})`}, config ${configPath}`,
  );

  const [program = '', ...args] = runtime.command;
  const child = spawn(program, args, { cwd: hostPath(stage, runtime.workdir), env, stdio: ['ignore', 'inherit', 'inherit'], ...as });
  const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      check(!gone, 'the gateway exited during start-up');
      check(Date.now() < deadline, `/healthz did not answer within ${READY_TIMEOUT_MS} ms`);
      const ok = await fetch(`http://127.0.0.1:${adminPort}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      await new Promise((wake) => setTimeout(wake, 100));
    }
    step('GET /healthz: 200');
    const healthcheck = () =>
      spawnSync(runtime.healthcheck![0]!, runtime.healthcheck!.slice(1), {
        env,
        cwd: hostPath(stage, runtime.workdir),
        timeout: 5_000,
        ...as,
      }).status;
    check(healthcheck() === 0, 'the HEALTHCHECK command failed on a healthy gateway');
    step('HEALTHCHECK command: exit 0');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const code = await exited;
    clearTimeout(timer);
    check(code === 0, `SIGTERM: the gateway exited with ${code}, expected 0`);
    step('SIGTERM: exit 0');
    check(healthcheck() !== 0, 'the HEALTHCHECK command passes with the gateway stopped');
    step('HEALTHCHECK command after stop: non-zero');
  } finally {
    if (!gone) child.kill('SIGKILL');
  }
}

const workspace = mkdtempSync(join(tmpdir(), 'tokengate-image-'));
try {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'), workspace);
  const runtime = build(stages);
  checkRecipe(stages, runtime);
  await start(runtime);
  step('image recipe OK');
} catch (error) {
  if (!(error instanceof CheckFailed)) throw error;
  process.stderr.write(`check-image: FAILED: ${error.message}\n`);
  process.exitCode = 1;
} finally {
  rmSync(workspace, { recursive: true, force: true });
}
