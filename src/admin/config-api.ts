/**
 * The admin API behind the console: reads of the file as configured (secret names, never
 * values), sign-in, and the changing calls for connections and route auth.
 */
import express, { type Request, type Router } from 'express';
import type { Document } from 'yaml';
import { formatPath } from '../config/errors.js';
import { PROTOTYPE_KEY_MESSAGE, PROTOTYPE_KEYS } from '../config/prototype-keys.js';
import { connectionSchema } from '../config/schema-connection.js';
import type { Config } from '../config/load.js';
import type { Logger } from '../observability/log.js';
import { crossSite, type AdminAuth } from './admin-auth.js';
import { audit } from './audit.js';
import { mergeInto, variableProblems, type ConfigEditor, type EditRecord } from './config-edit.js';
import type { ConnectionAnswer, ConsoleState, EditAnswer, RoutesAnswer, RouteSummary, SignInNeeded } from './api-types.js';
import { adminJson } from './json-body.js';
import { maskTree, restoreMasked } from './mask.js';
import { AdminError } from '../errors/admin.js';

export interface ConfigApiState {
  auth: AdminAuth;
  editor: ConfigEditor;
  config: () => Config;
  log: Logger;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

export function createConfigApi(state: ConfigApiState): Router {
  const { auth, editor } = state;
  const api = express.Router();
  const json = adminJson();

  /** Changing calls: same site, signed in (or a key), and editing switched on. */
  const mayEdit = (req: Request): void => {
    auth.require(req, { openWithoutAuth: false });
    if (!state.config().admin.console.edit)
      throw new AdminError('ADMIN_FORBIDDEN', 'editing is off: set admin.console.edit: true in the config to allow changes');
  };

  /** An edit through the editor, audited with who made it once it is accepted. */
  const edit = async (req: Request, version: unknown, change: Parameters<ConfigEditor['edit']>[1]): Promise<{ version: string }> => {
    let record: EditRecord | undefined;
    const result = await editor.edit(version, (doc, data) => (record = change(doc, data)));
    if (record !== undefined) audit(state.log, { action: record.action, who: auth.identity(req), target: targetOf(record) });
    return result;
  };

  api.get('/console/state', async (req, res) => {
    res.setHeader('cache-control', 'no-store');
    const config = state.config();
    // How the sign-in page may sign in: an admin key field, a single sign-on button, or both.
    const signInWith = { key: (config.admin.auth?.apiKeys.length ?? 0) > 0, sso: config.admin.auth?.oidc !== undefined };
    // Before sign-in the console needs to know only that it must ask for it, and how: nothing else is said.
    if (auth.configured && !auth.authenticated(req)) {
      res.json({ authRequired: true, signedIn: false, signInWith } satisfies SignInNeeded);
      return;
    }
    const file = await editor.read();
    const who = auth.identity(req);
    res.json({
      authRequired: auth.configured,
      signedIn: auth.authenticated(req),
      signInWith,
      // Who is signed in (name and role, never a key or session id).
      user: who === undefined ? null : { name: who.name, role: who.role, method: who.method },
      edit: config.admin.console.edit,
      readOnly: file.readOnly,
      version: file.version,
      // Names only: the form offers them, their values never leave the process.
      secrets: Object.keys(isObject(file.data.secrets) ? file.data.secrets : {}),
    } satisfies ConsoleState);
  });

  api.get('/session', (req, res) => {
    const who = auth.identity(req);
    if (who === undefined) throw new AdminError('ADMIN_AUTH_REQUIRED', 'not signed in');
    res.setHeader('cache-control', 'no-store');
    res.json({ name: who.name, role: who.role, method: who.method, key: who.key, sub: who.sub, email: who.email });
  });

  api.post('/session', json, async (req, res) => {
    refuseCrossSite(req);
    await auth.signIn(req, res, isObject(req.body) ? req.body.key : undefined);
    res.status(204).end();
  });

  api.delete('/session', async (req, res) => {
    refuseCrossSite(req);
    await auth.signOut(req, res);
    res.status(204).end();
  });

  api.get('/routes', async (_req, res) => {
    const file = await editor.read();
    const routes = Array.isArray(file.data.routes) ? file.data.routes.filter(isObject) : [];
    const names = secretNames(file.data);
    res.setHeader('cache-control', 'no-store');
    res.json({
      version: file.version,
      routes: routes.map((route) => {
        const routeAuth = isObject(route.auth) ? route.auth : {};
        // The file as written: a route the schema accepted has this shape (a hand edit not yet loaded may not).
        return maskTree(
          {
            name: route.name,
            match: route.match,
            upstream: route.upstream,
            auth: { type: routeAuth.type ?? 'client-connection', connection: routeAuth.connection ?? null, params: routeAuth.params ?? {} },
          },
          names,
        ) as RouteSummary;
      }),
    } satisfies RoutesAnswer);
  });

  api.get('/connections/:key', async (req, res) => {
    const file = await editor.read();
    const connections = connectionsOf(file.data);
    const connection = connections[req.params.key];
    if (!Object.hasOwn(connections, req.params.key) || !isObject(connection))
      throw new AdminError('NOT_FOUND', `no connection ${req.params.key.slice(0, 100)} in the config file`);
    // A valid connection block holds secret *names* only. A key the schema does not know, or a value
    // of the wrong type where a name or a block belongs (`clientSecret: s3cr3t`) is a secret pasted
    // in the wrong place since the last load: it is not shown; say where it is, nothing more. A
    // missing key, a `${VAR}` (substituted on load) or a value a check refuses hides nothing.
    const hidden = (connectionSchema.safeParse(connection).error?.issues ?? []).flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ path: [...issue.path, key], message: 'unknown key' }))
        : (issue.code === 'invalid_type' || issue.code === 'invalid_union') && mayHoldSecret(valueAt(connection, issue.path))
          ? [{ path: issue.path, message: issue.message }]
          : [],
    );
    if (hidden.length > 0)
      throw new AdminError(
        'CONFIG_INVALID',
        'the connection in the config file has keys or values tokengate does not accept; fix the file',
        {
          problems: hidden.map(({ path, message }) => ({ path: formatPath(['connections', req.params.key, ...path]), message })),
        },
      );
    res.setHeader('cache-control', 'no-store');
    res.json({
      key: req.params.key,
      connection: maskTree(connection, secretNames(file.data)) as Json,
      version: file.version,
    } satisfies ConnectionAnswer);
  });

  api.put('/connections/:key', json, async (req, res) => {
    mayEdit(req);
    const key = req.params.key;
    refusePrototypeKey(key);
    const body: unknown = req.body;
    const { version, ...sent } = isObject(body) ? body : { version: undefined };
    const result = await edit(req, version, (doc, data) => {
      if (!isObject(body))
        throw new AdminError('CONFIG_INVALID', 'the change was not applied', {
          problems: [{ path: `connections.${key}`, message: 'send the connection as a JSON object' }],
        });
      const existing = Object.hasOwn(connectionsOf(data), key) ? connectionsOf(data)[key] : undefined;
      const connection = restoreMasked(sent, existing, secretNames(data)) as Json;
      refuseNewVariables(connection, existing, `connections.${key}`);
      mergeInto(doc, ['connections', key], connection);
      return { action: Object.hasOwn(connectionsOf(data), key) ? 'connection_replace' : 'connection_create', connection: key };
    });
    res.json({ ok: true, key, version: result.version } satisfies EditAnswer);
  });

  api.delete('/connections/:key', json, async (req, res) => {
    mayEdit(req);
    const key = req.params.key;
    refusePrototypeKey(key);
    const version = typeof req.query.version === 'string' ? req.query.version : isObject(req.body) ? req.body.version : undefined;
    const result = await edit(req, version, (doc, data) => {
      if (!Object.hasOwn(connectionsOf(data), key))
        throw new AdminError('NOT_FOUND', `no connection ${key.slice(0, 100)} in the config file`);
      const users = routesOf(data)
        .filter((route) => isObject(route.auth) && route.auth.type !== 'none' && route.auth.connection === key)
        .map((route) => String(route.name));
      if (users.length > 0)
        throw new AdminError('CONNECTION_IN_USE', `routes still use ${key}: ${users.join(', ')}; change their auth first`, {
          routes: users,
        });
      doc.deleteIn(['connections', key]);
      return { action: 'connection_delete', connection: key };
    });
    res.json({ ok: true, key, version: result.version } satisfies EditAnswer);
  });

  api.put('/routes/:name/auth', json, async (req, res) => {
    mayEdit(req);
    const name = req.params.name;
    const body: unknown = req.body;
    const { version, ...sent } = isObject(body) ? body : { version: undefined };
    const result = await edit(req, version, (doc: Document, data) => {
      const index = routesOf(data).findIndex((route) => route.name === name);
      if (index < 0) throw new AdminError('NOT_FOUND', `no route ${name.slice(0, 100)} in the config file`);
      const path = `routes[${index}].auth`;
      if (!isObject(body))
        throw new AdminError('CONFIG_INVALID', 'the change was not applied', {
          problems: [{ path, message: 'send the auth as a JSON object' }],
        });
      const existing = routesOf(data)[index]?.auth;
      const routeAuth = restoreMasked(sent, existing, secretNames(data), ['auth']) as Json;
      refuseNewVariables(routeAuth, existing, path);
      mergeInto(doc, ['routes', index, 'auth'], routeAuth);
      return { action: 'route_auth_replace', route: name };
    });
    res.json({ ok: true, route: name, version: result.version } satisfies EditAnswer);
  });

  return api;
}

/** The value at a zod issue's path inside `value`, or undefined when some step is missing. */
function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let at = value;
  for (const step of path) {
    if (typeof at !== 'object' || at === null || typeof step === 'symbol' || !Object.hasOwn(at, step)) return undefined;
    at = (at as Record<string | number, unknown>)[step];
  }
  return at;
}

/** Anything but an absent value or a lone `${VAR}` (which the environment fills in on load). */
function mayHoldSecret(value: unknown): boolean {
  return value !== undefined && !(typeof value === 'string' && /^\$\{[^}]*\}$/.test(value));
}

/** The names under `secrets`: a value where a secret name belongs that is none of them is masked. */
function secretNames(data: Json): Set<string> {
  return new Set(Object.keys(isObject(data.secrets) ? data.secrets : {}));
}

/** `PUT /connections/__proto__` would otherwise be accepted and vanish on load (see prototype-keys.ts). */
function refusePrototypeKey(key: string): void {
  if (PROTOTYPE_KEYS.includes(key))
    throw new AdminError('CONFIG_INVALID', 'the change was not applied', {
      problems: [{ path: `connections.${key}`, message: PROTOTYPE_KEY_MESSAGE }],
    });
}

/** What an edit changed, as the audit line names it. */
function targetOf(record: EditRecord): string {
  return record.connection !== undefined ? `connections.${record.connection}` : `routes.${record.route ?? ''}.auth`;
}

function connectionsOf(data: Json): Json {
  return isObject(data.connections) ? data.connections : {};
}

function routesOf(data: Json): Json[] {
  return Array.isArray(data.routes) ? data.routes.map((route) => (isObject(route) ? route : {})) : [];
}

/** A page elsewhere must not sign the browser in or out (login CSRF) any more than change things. */
function refuseCrossSite(req: Request): void {
  if (crossSite(req)) throw new AdminError('ADMIN_FORBIDDEN', 'cross-site requests may not change anything');
}

function refuseNewVariables(value: unknown, existing: unknown, path: string): void {
  const problems = variableProblems(value, existing, path);
  if (problems.length > 0) throw new AdminError('CONFIG_INVALID', 'the change was not applied', { problems });
}
