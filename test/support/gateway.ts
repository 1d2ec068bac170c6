/** Starts a real Gateway on loopback ports from a YAML config written to a temp folder. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/log.js';
import { Gateway } from '../../src/gateway/gateway.js';

export interface TestGateway {
  gateway: Gateway;
  url: string;
  admin: string;
  dir: string;
  configFile: string;
  /** Every log line, parsed. */
  logs: Record<string, unknown>[];
  /** Every log line as written (for "secret never logged" checks). */
  logText(): string;
  stop(): Promise<void>;
}

export function writeConfig(yaml: string, files: Record<string, string> = {}): { dir: string; configFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-test-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, yaml);
  return { dir, configFile };
}

export async function startGateway(
  yaml: string,
  options: {
    files?: Record<string, string>;
    env?: NodeJS.ProcessEnv;
    watch?: boolean;
    /** Lays out more of the config folder (symlinks, sub-folders) before the gateway starts. */
    prepare?: (dir: string) => void;
    /** The admin listener's port (default 0: any free one), for a URL a peer must know before the start. */
    adminPort?: number;
  } = {},
): Promise<TestGateway> {
  const { dir, configFile } = writeConfig(yaml, options.files);
  options.prepare?.(dir);
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination, pretty: false });
  const gateway = await Gateway.start({
    configFile,
    logger,
    env: options.env ?? process.env,
    listenPort: 0,
    adminPort: options.adminPort ?? 0,
    watch: options.watch ?? false,
  });
  return {
    gateway,
    url: gateway.proxyUrl,
    admin: gateway.adminUrl,
    dir,
    configFile,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join('\n'),
    stop: () => gateway.stop(1_000),
  };
}
