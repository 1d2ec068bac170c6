/**
 * The admin listener (loopback by default): metrics, health, readiness, usage data, and the
 * connection list and test button. Never a token: summaries mask it.
 */
import express, { type Express } from 'express';
import type { ConfigError } from '../config/errors.js';
import type { Config } from '../config/load.js';
import type { Logger } from '../observability/log.js';
import type { ManagedKeys } from '../tokens/managed-keys.js';
import type { TokenProvider } from '../tokens/provider.js';
import { testToken } from '../tokens/summary.js';
import { TestCooldown } from './test-cooldown.js';
import { AdminAuth } from './admin-auth.js';
import type { ConnectionList, UsageAnswer, UsageHistoryAnswer } from './api-types.js';
import { createConfigApi } from './config-api.js';
import { answerAdminError } from './error-answer.js';
import { ConfigEditor } from './config-edit.js';
import { consoleAssets } from './console-assets.js';
import { hostCheck } from './host-check.js';
import { maskUrl } from './mask.js';
import type { Metrics } from '../observability/metrics.js';
import { MemorySessionStore, type SessionStore } from './session-store.js';
import { createSsoRouter } from './sso.js';
import { AdminError } from '../errors/admin.js';
import { writeProblem } from '../errors/problem.js';
import { readGuard } from './read-guard.js';
import type { Usage } from '../observability/usage.js';

export interface AdminState {
  metrics: Metrics;
  usage: Usage;
  provider: TokenProvider;
  config: () => Config;
  ready: () => boolean;
  log: Logger;
  /** The config file the console edits, and the environment its `${VAR}`s and secrets are read from. */
  configFile: string;
  env: NodeJS.ProcessEnv;
  /** The gateway's reload: a console edit takes effect through it before the answer returns. */
  reload: () => Promise<{ ok: boolean; error?: ConfigError }>;
  /** privateKeyJwt.managed: the public keys served at /jwks/KEY.json. */
  managedKeys: ManagedKeys;
  /** Console sessions (admin.sessions.store); a process-local store when not given. */
  sessions?: SessionStore;
}

export function createAdminApp(state: AdminState): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const sessions = state.sessions ?? new MemorySessionStore();
  const auth = new AdminAuth(state.config, sessions, state.log);
  const tests = new TestCooldown(state.provider, (key) => state.config().connections.get(key)?.fingerprint);
  const editor = new ConfigEditor({ file: state.configFile, env: state.env, reload: state.reload, log: state.log });
  // DNS rebinding: a foreign Host is refused before anything else runs.
  app.use(hostCheck(() => state.config().admin.allowedHosts));
  app.use(consoleAssets());
  app.use(auth.identify);
  app.use(readGuard(auth));
  app.use(createSsoRouter({ auth, config: state.config, store: sessions, log: state.log }));
  app.use(createConfigApi({ auth, editor, config: state.config, log: state.log }));

  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', state.metrics.registry.contentType);
    res.send(await state.metrics.registry.metrics());
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = state.ready();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'draining' });
  });
  app.get('/usage', (req, res) => {
    const only = req.query.connection;
    if (only !== undefined && typeof only !== 'string') {
      writeProblem(res, new AdminError('BAD_REQUEST', 'give at most one connection: /usage?connection=KEY'));
      return;
    }
    if (only !== undefined && !state.config().connections.has(only)) {
      writeProblem(res, new AdminError('NOT_FOUND', `unknown connection ${only.slice(0, 100)}`));
      return;
    }
    res.json(state.usage.snapshot(state.provider.expiries(), only) satisfies UsageAnswer);
  });
  app.get('/usage/history', (_req, res) => {
    res.json(state.usage.history.snapshot() satisfies UsageHistoryAnswer);
  });
  // Open, as /healthz is: authorization servers fetch it (Okta, Keycloak, Entra ID, oidc-provider: the client's jwks_uri).
  app.get('/jwks/:file', (req, res) => {
    const key = /^(.+)\.json$/.exec(req.params.file)?.[1];
    const jwks = key === undefined ? undefined : state.managedKeys.jwks(key);
    if (jwks === undefined) {
      writeProblem(res, new AdminError('NOT_FOUND', 'no connection with managed keys (privateKeyJwt.managed) under this name'));
      return;
    }
    // Shorter than the overlap: a server that honours it sees each new key before it signs.
    res.setHeader('cache-control', `public, max-age=${jwks.maxAgeSeconds}`);
    res.type('application/jwk-set+json').send(JSON.stringify({ keys: jwks.keys }));
  });
  app.get('/connections', (_req, res) => {
    const expiries = state.provider.expiries();
    res.json({
      connections: [...state.config().connections.values()].map((c) => {
        const expiresIn = expiries.get(c.key);
        return {
          connection: c.key,
          displayName: c.displayName,
          // A discovered endpoint shows once discovery has run (the first token request or test).
          tokenEndpoint: maskOrNull(state.provider.tokenEndpoint(c.key)),
          issuer: maskOrNull(c.issuer),
          clientAuth: c.auth.method,
          // RFC 9449: the public side only (the thumbprint is the tokens' cnf.jkt), never the key.
          dpop: c.dpopSigner === undefined ? null : { algorithm: c.dpopSigner.algorithm, thumbprint: c.dpopSigner.thumbprint },
          // clientSecret.previous: which secret the last token request used (null without a client secret).
          secretInUse: state.provider.secretInUse(c.key) ?? null,
          // privateKeyJwt.managed: where the partner fetches the public keys, and the keys' ages (public facts only).
          managedKeys:
            c.credentials.kind === 'managedKeyJwt'
              ? { jwksPath: `/jwks/${c.key}.json`, keys: state.managedKeys.summary(c.key) ?? [] }
              : null,
          tokenCached: expiresIn !== undefined && expiresIn > 0,
          expiresInSeconds: expiresIn === undefined ? null : Math.max(0, Math.floor(expiresIn)),
        };
      }),
    } satisfies ConnectionList);
  });
  app.post('/connections/:key/test', async (req, res) => {
    // A test spends a token request: with admin.auth set it needs a key or a session too.
    auth.require(req, { openWithoutAuth: true, role: 'viewer' });
    const connection = state.config().connections.get(req.params.key);
    if (connection === undefined) {
      writeProblem(res, new AdminError('NOT_FOUND', `unknown connection ${req.params.key.slice(0, 100)}`));
      return;
    }
    const { ok, summary } = await testToken(tests, connection.key, connection.params);
    res.status(ok ? 200 : 502).json(summary);
  });
  app.use(answerAdminError(state.log));
  return app;
}

/** A discovered endpoint is the authorization server's text: shown without user info or credential parameters. */
const maskOrNull = (url: string | undefined): string | null => (url === undefined ? null : maskUrl(url));
