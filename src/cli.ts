#!/usr/bin/env node
/**
 * tokengate serve | validate | token. Exit codes: 0 success, 1 invalid config or failed
 * operation, 2 bad command-line usage.
 */
import { parseArgs } from 'node:util';
import { Metrics } from './observability/metrics.js';
import { Usage } from './observability/usage.js';
import { ConfigError, formatProblem } from './config/errors.js';
import { createLogger } from './observability/log.js';
import { buildConfig } from './runtime/build.js';
import { configWarnings } from './config/warnings.js';
import { Gateway } from './gateway/gateway.js';
import { Telemetry } from './observability/token-observer.js';
import { TokenProvider } from './tokens/provider.js';
import { testToken } from './tokens/summary.js';
import { resolveTracing } from './tracing/settings.js';

const USAGE = `usage:
  tokengate serve [--config FILE]
  tokengate validate [--config FILE] [--strict]
  tokengate token KEY [--config FILE] [--param name=value]... [--show-token]

FILE defaults to $TOKENGATE_CONFIG, else config/gateway.yaml.
validate prints every warning serve would log; --strict makes a warning fail it (exit 1).`;

class UsageError extends Error {}

function configFile(value: string | undefined): string {
  // An empty variable counts as unset, as in the shell's ${VAR:-default}.
  return value ?? (process.env.TOKENGATE_CONFIG || 'config/gateway.yaml');
}

function printConfigError(error: ConfigError): void {
  process.stderr.write(`invalid config ${error.file}: ${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}\n`);
  for (const problem of error.problems) process.stderr.write(`  ${formatProblem(error.file, problem)}\n`);
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  const log = createLogger();
  // eslint-disable-next-line prefer-const -- the SIGHUP handler below reads it before it is assigned: a const would throw there
  let gateway: Gateway | undefined;
  // Installed before listening: SIGHUP's default action would end the process. A SIGHUP during
  // start-up has nothing to do, the config is being read anyway.
  // reload() never rejects: a config it cannot build is a refused reload, counted and logged.
  process.on('SIGHUP', () => void gateway?.reload());
  gateway = await Gateway.start({ configFile: configFile(values.config), logger: log, watch: true });
  const started = gateway;
  return new Promise((done) => {
    const stop = (signal: string) => {
      log.info({ event: 'signal', signal }, `${signal}: shutting down`);
      // A shutdown step that fails (Redis, the trace exporter) is logged; the process still exits, with 1.
      started.stop().then(
        () => done(0),
        (error: unknown) => {
          log.error({ event: 'shutdown_failed', err: error }, 'shutdown did not complete cleanly');
          done(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * Every stage of the pipeline `serve` and a reload run, the runtime build included; only the
 * commit (listeners, Redis, token requests) is left out. Every warning `serve` would log is
 * printed; with --strict a warning fails the check (exit 1), so a CI gate refuses what serve warns about.
 */
async function validate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, strict: { type: 'boolean', default: false } },
    strict: true,
  });
  const file = configFile(values.config);
  const { config } = await buildConfig(file);
  const warnings = [
    ...configWarnings(config),
    ...resolveTracing(config.tracing, process.env).warnings.map((message) => ({ event: 'tracing_warning', message })),
  ];
  for (const { message } of warnings) process.stderr.write(`warning: ${message}\n`);
  const summary = `${config.routes.length} routes, ${config.connections.size} connections`;
  if (values.strict && warnings.length > 0) {
    process.stderr.write(`${file}: ${warnings.length} warning${warnings.length === 1 ? '' : 's'}; --strict refuses it (${summary})\n`);
    return 1;
  }
  const warned = warnings.length === 0 ? '' : `, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}`;
  process.stdout.write(`${file}: valid (${summary}${warned})\n`);
  return 0;
}

async function token(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      param: { type: 'string', multiple: true },
      'show-token': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError('token takes exactly one connection KEY');
  const key = positionals[0]!;
  const extra: Record<string, string> = {};
  for (const pair of values.param ?? []) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--param wants name=value, got "${pair}"`);
    extra[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const { config } = await buildConfig(configFile(values.config));
  const connection = config.connections.get(key);
  if (connection === undefined) {
    process.stderr.write(`unknown connection "${key}"; known: ${[...config.connections.keys()].join(', ') || 'none'}\n`);
    return 1;
  }
  const log = createLogger({ level: process.env.LOG_LEVEL ?? 'silent' });
  const provider = new TokenProvider(config.connections.values(), new Telemetry(new Metrics(), new Usage(), log));
  try {
    const { ok, summary } = await testToken(provider, key, { ...connection.params, ...extra }, values['show-token']);
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return ok ? 0 : 1;
  } finally {
    provider.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'validate':
        return await validate(rest);
      case 'token':
        return await token(rest);
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(`${USAGE}\n`);
        return 0;
      default:
        throw new UsageError(command === undefined ? 'no command given' : `unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      printConfigError(error);
      return 1;
    }
    if (error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`tokengate: ${(error as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
