/**
 * The admin API behind the console: who may change the config, how refusals look, and that the
 * file only ever changes by an accepted edit (comments kept, atomically, applied by reload).
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';

const ADMIN_KEY = 'admin-key-0123456789abcdef';
const CLIENT_SECRET = 'client-secret-0123456789abcdef0123';
const env = { ...process.env, TG_ADMIN_KEY: ADMIN_KEY, TG_CLIENT_SECRET: CLIENT_SECRET, TG_TOKEN_URL: 'http://127.0.0.1:9/token' };
const bearer = { authorization: `Bearer ${ADMIN_KEY}` };

function yaml(tokenUrl: string, edit = true): string {
  return `# top comment, kept by every edit
admin:
  auth: { apiKeys: [ { secret: admin-key } ] }
  console: { edit: ${edit} } # console switch
secrets:
  admin-key: { env: TG_ADMIN_KEY }
  client-secret: { env: TG_CLIENT_SECRET }
connections:
  orders: # the orders client
    displayName: Orders
    clientId: orders-client
    tokenUrl: ${tokenUrl}
    clientSecret: { secret: client-secret }
  spare:
    clientId: spare-client
    tokenUrl: \${TG_TOKEN_URL}
    clientSecret: { secret: client-secret }
routes:
  - name: orders-api # uses orders
    match: { pathPrefix: /orders }
    upstream: http://127.0.0.1:9
    auth: { connection: orders }
`;
}

async function send(gw: TestGateway, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${gw.admin}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    text,
    json: JSON.parse(text || '{}') as Record<string, any>,
  };
}

const version = async (gw: TestGateway): Promise<string> =>
  (await send(gw, 'GET', '/console/state', undefined, bearer)).json.version as string;

describe('console admin API', () => {
  let oidc: OidcServer;
  let gw: TestGateway;
  before(async () => {
    oidc = await startOidcProvider([{ client_id: 'orders-client', client_secret: CLIENT_SECRET }]);
    gw = await startGateway(yaml(oidc.tokenUrl), { env });
  });
  after(async () => {
    await gw.stop();
    await oidc.close();
  });

  it('refuses a changing call without a session or key: 401 ADMIN_AUTH_REQUIRED, problem+json, file unchanged', async () => {
    const file = readFileSync(gw.configFile);
    for (const [method, path, body] of [
      ['PUT', '/connections/new', { clientId: 'x', version: await version(gw) }],
      ['DELETE', `/connections/spare?version=${await version(gw)}`, undefined],
      ['PUT', '/routes/orders-api/auth', { type: 'none', version: await version(gw) }],
      ['POST', '/connections/orders/test', undefined],
    ] as const) {
      const answer = await send(gw, method, path, body, { authorization: 'Bearer wrong-key' });
      assert.equal(answer.status, 401, `${method} ${path}`);
      assert.equal(answer.json.code, 'ADMIN_AUTH_REQUIRED');
      assert.match(answer.type, /^application\/problem\+json/);
    }
    assert.deepEqual(readFileSync(gw.configFile), file);
  });

  it('refuses cross-site requests with 403 ADMIN_FORBIDDEN even with a valid key', async () => {
    const body = { clientId: 'x', version: await version(gw) };
    const fromElsewhere = await send(gw, 'PUT', '/connections/new', body, { ...bearer, origin: 'http://evil.example' });
    assert.equal(fromElsewhere.status, 403);
    assert.equal(fromElsewhere.json.code, 'ADMIN_FORBIDDEN');
    const fetchMetadata = await send(gw, 'PUT', '/connections/new', body, { ...bearer, 'sec-fetch-site': 'cross-site' });
    assert.equal(fetchMetadata.status, 403);
    // Another port of the same host is "same-site", and SameSite=Strict cookies go there: the proxy
    // listener serves upstream pages from such an origin, so only same-origin may change things.
    const sibling = await send(gw, 'PUT', '/connections/new', body, { ...bearer, 'sec-fetch-site': 'same-site' });
    assert.equal(sibling.status, 403);
    const otherPort = await send(gw, 'PUT', '/connections/new', body, { ...bearer, origin: gw.url });
    assert.equal(otherPort.status, 403);
    const signIn = await send(gw, 'POST', '/session', { key: ADMIN_KEY }, { origin: 'http://evil.example' });
    assert.equal(signIn.status, 403, 'no login CSRF');
  });

  it('signs in with the admin key: an HttpOnly SameSite=Strict session cookie that then allows changes', async () => {
    const wrong = await send(gw, 'POST', '/session', { key: 'nope' });
    assert.equal(wrong.status, 401);
    const response = await fetch(`${gw.admin}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: gw.admin, 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ key: ADMIN_KEY }),
    });
    assert.equal(response.status, 204);
    const cookie = response.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.doesNotMatch(cookie, /Secure/, 'plain HTTP listener: no Secure flag (the browser would drop the cookie)');
    const session = cookie.split(';')[0] ?? '';
    const state = await send(gw, 'GET', '/console/state', undefined, { cookie: session });
    assert.equal(state.json.signedIn, true);
    const test = await send(gw, 'POST', '/connections/orders/test', undefined, { cookie: session });
    assert.equal(test.status, 200);
    assert.equal(test.json.ok, true);
    const signOut = await send(gw, 'DELETE', '/session', undefined, { cookie: session });
    assert.equal(signOut.status, 204);
    assert.equal((await send(gw, 'POST', '/connections/orders/test', undefined, { cookie: session })).status, 401);
  });

  it('GET /routes and GET /connections/KEY show the file as configured: secret names and ${VAR}s, never values', async () => {
    const routes = await send(gw, 'GET', '/routes', undefined, bearer);
    assert.deepEqual(routes.json.routes[0], {
      name: 'orders-api',
      match: { pathPrefix: '/orders' },
      upstream: 'http://127.0.0.1:9',
      auth: { type: 'client-connection', connection: 'orders', params: {} },
    });
    const spare = await send(gw, 'GET', '/connections/spare', undefined, bearer);
    assert.equal(spare.json.connection.tokenUrl, '${TG_TOKEN_URL}');
    assert.deepEqual(spare.json.connection.clientSecret, { secret: 'client-secret' });
    assert.equal(typeof spare.json.version, 'string');
    const everything = [
      routes.text,
      spare.text,
      (await send(gw, 'GET', '/console/state', undefined, bearer)).text,
      (await send(gw, 'GET', '/connections/orders', undefined, bearer)).text,
    ].join();
    assert.ok(!everything.includes(CLIENT_SECRET) && !everything.includes(ADMIN_KEY));
    assert.equal((await send(gw, 'GET', '/connections/nope', undefined, bearer)).status, 404);
  });

  it('does not show a connection block with a key tokengate does not know (a secret pasted in the wrong place)', async () => {
    const original = readFileSync(gw.configFile, 'utf8');
    writeFileSync(gw.configFile, original.replace('clientId: spare-client', 'clientId: spare-client\n    password: pasted-by-mistake'));
    try {
      const answer = await send(gw, 'GET', '/connections/spare', undefined, bearer);
      assert.equal(answer.status, 422);
      assert.deepEqual(answer.json.problems, [{ path: 'connections.spare.password', message: 'unknown key' }]);
      assert.ok(!answer.text.includes('pasted-by-mistake'));
    } finally {
      writeFileSync(gw.configFile, original);
    }
  });

  it('does not show a connection block with a secret pasted where a secret name belongs', async () => {
    const original = readFileSync(gw.configFile, 'utf8');
    const pasted = 'pasted-client-secret-0123456789';
    const spareSecret = 'tokenUrl: ${TG_TOKEN_URL}\n    clientSecret: { secret: client-secret }';
    writeFileSync(gw.configFile, original.replace(spareSecret, `tokenUrl: \${TG_TOKEN_URL}\n    clientSecret: ${pasted}`));
    try {
      const answer = await send(gw, 'GET', '/connections/spare', undefined, bearer);
      assert.equal(answer.status, 422);
      assert.equal(answer.json.code, 'CONFIG_INVALID');
      assert.deepEqual(
        (answer.json.problems as { path: string }[]).map((problem) => problem.path),
        ['connections.spare.clientSecret'],
      );
      assert.ok(!answer.text.includes(pasted));
    } finally {
      writeFileSync(gw.configFile, original);
    }
  });

  it('reads a file with an alias that has no anchor (an unquoted secret starting with *) without echoing it', async () => {
    const original = readFileSync(gw.configFile, 'utf8');
    const pasted = 'pasted-alias-secret-0123456789';
    writeFileSync(gw.configFile, original.replace('secrets:\n', `secrets:\n  stray: { value: *${pasted} }\n`));
    try {
      const answers = await Promise.all(
        ['/console/state', '/routes', '/connections/spare'].map((path) => send(gw, 'GET', path, undefined, bearer)),
      );
      for (const answer of answers) assert.ok(answer.status < 500, `${answer.status} ${answer.text}`);
      assert.ok(![...answers.map((answer) => answer.text), gw.logText()].join().includes(pasted));
    } finally {
      writeFileSync(gw.configFile, original);
    }
  });

  it('accepts a valid edit: written with comments kept, applied by reload before the answer, logged as config_edit', async () => {
    const original = readFileSync(gw.configFile, 'utf8');
    const answer = await send(
      gw,
      'PUT',
      '/connections/inventory',
      {
        displayName: 'Inventory',
        clientId: 'orders-client',
        tokenUrl: oidc.tokenUrl,
        clientSecret: { secret: 'client-secret', method: 'client_secret_post' },
        params: { scope: 'orders.read' },
        version: await version(gw),
      },
      bearer,
    );
    assert.equal(answer.status, 200, answer.text);
    const text = readFileSync(gw.configFile, 'utf8');
    for (const comment of ['# top comment, kept by every edit', '# console switch', '# the orders client', '# uses orders'])
      assert.ok(text.includes(comment), comment);
    assert.ok(text.includes('tokenUrl: ${TG_TOKEN_URL}'), 'variables are kept as written');
    // Adding a connection only adds lines: every line of the file is still there, as it was.
    const kept = new Set(text.split('\n'));
    assert.deepEqual(
      original.split('\n').filter((line) => !kept.has(line)),
      [],
    );
    assert.ok(!text.includes(CLIENT_SECRET));
    // Applied before the answer: the connection list already has it.
    const list = await send(gw, 'GET', '/connections', undefined, bearer);
    assert.ok((list.json.connections as { connection: string }[]).some((c) => c.connection === 'inventory'));
    const logged = gw.logs.find((line) => line.event === 'config_edit');
    assert.deepEqual([logged?.action, logged?.connection], ['connection_create', 'inventory']);
    assert.deepEqual(
      readdirSync(gw.dir).filter((name) => name.endsWith('.tmp')),
      [],
      'no temporary file left behind',
    );
  });

  it('refuses an invalid edit with 422 CONFIG_INVALID and problems at key paths; the file stays byte for byte', async () => {
    const file = readFileSync(gw.configFile);
    const answer = await send(
      gw,
      'PUT',
      '/connections/orders',
      {
        clientId: 'orders-client',
        tokenUrl: oidc.tokenUrl,
        clientSecret: { secret: 'no-such-secret' },
        version: await version(gw),
      },
      bearer,
    );
    assert.equal(answer.status, 422);
    assert.equal(answer.json.code, 'CONFIG_INVALID');
    assert.ok(
      (answer.json.problems as { path: string }[]).some((p) => p.path === 'connections.orders.clientSecret.secret'),
      answer.text,
    );
    assert.deepEqual(readFileSync(gw.configFile), file);
  });

  it('refuses to add a ${VAR} from the console (it could read the environment back), but keeps one the file has', async () => {
    const answer = await send(
      gw,
      'PUT',
      '/connections/spare',
      {
        clientId: '${TG_CLIENT_SECRET}',
        tokenUrl: '${TG_TOKEN_URL}',
        clientSecret: { secret: 'client-secret' },
        version: await version(gw),
      },
      bearer,
    );
    assert.equal(answer.status, 422);
    assert.deepEqual(
      (answer.json.problems as { path: string }[]).map((p) => p.path),
      ['connections.spare.clientId'],
    );
  });

  it('refuses to delete a connection that routes use: 409 CONNECTION_IN_USE naming them', async () => {
    const answer = await send(gw, 'DELETE', `/connections/orders?version=${await version(gw)}`, undefined, bearer);
    assert.equal(answer.status, 409);
    assert.equal(answer.json.code, 'CONNECTION_IN_USE');
    assert.deepEqual(answer.json.routes, ['orders-api']);
  });

  it('refuses an edit based on a stale version: 409 CONFIG_CHANGED', async () => {
    const stale = await version(gw);
    assert.equal((await send(gw, 'PUT', '/routes/orders-api/auth', { connection: 'inventory', version: stale }, bearer)).status, 200);
    const second = await send(gw, 'PUT', '/routes/orders-api/auth', { connection: 'orders', version: stale }, bearer);
    assert.equal(second.status, 409);
    assert.equal(second.json.code, 'CONFIG_CHANGED');
    assert.equal((await send(gw, 'GET', '/routes', undefined, bearer)).json.routes[0].auth.connection, 'inventory');
    assert.ok(readFileSync(gw.configFile, 'utf8').includes('# uses orders'));
  });

  it('serialises two edits sent at the same moment from the same version: one is applied, the other gets CONFIG_CHANGED', async () => {
    const base = await version(gw);
    const answers = await Promise.all(
      ['orders', 'inventory'].map((connection) => send(gw, 'PUT', '/routes/orders-api/auth', { connection, version: base }, bearer)),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 409]);
    const winner = answers.findIndex((a) => a.status === 200);
    assert.equal((await send(gw, 'GET', '/routes', undefined, bearer)).json.routes[0].auth.connection, ['orders', 'inventory'][winner]);
  });

  it('refuses a deletion based on a stale version: 409 CONFIG_CHANGED with the current version; the connection stays', async () => {
    const stale = await version(gw);
    // Someone else's edit: the route moves to the other connection, so the file does change.
    const now = (await send(gw, 'GET', '/routes', undefined, bearer)).json.routes[0].auth.connection as string;
    const other = now === 'orders' ? 'inventory' : 'orders';
    assert.equal((await send(gw, 'PUT', '/routes/orders-api/auth', { connection: other, version: stale }, bearer)).status, 200);
    assert.notEqual(await version(gw), stale);
    const before = readFileSync(gw.configFile, 'utf8');
    const answer = await send(gw, 'DELETE', `/connections/spare?version=${stale}`, undefined, bearer);
    assert.equal(answer.status, 409, answer.text);
    assert.equal(answer.json.code, 'CONFIG_CHANGED');
    assert.equal(answer.json.version, await version(gw));
    assert.equal(readFileSync(gw.configFile, 'utf8'), before);
    assert.ok(before.includes('spare-client'));
  });

  it('deletes a connection no route uses', async () => {
    const answer = await send(gw, 'DELETE', `/connections/spare?version=${await version(gw)}`, undefined, bearer);
    assert.equal(answer.status, 200, answer.text);
    assert.ok(!readFileSync(gw.configFile, 'utf8').includes('spare-client'));
  });

  it('answers 409 CONFIG_READ_ONLY for a read-only file, and the console state says editing is off', async () => {
    chmodSync(gw.configFile, 0o444);
    try {
      assert.equal((await send(gw, 'GET', '/console/state', undefined, bearer)).json.readOnly, true);
      const answer = await send(gw, 'PUT', '/routes/orders-api/auth', { connection: 'orders', version: await version(gw) }, bearer);
      assert.equal(answer.status, 409);
      assert.equal(answer.json.code, 'CONFIG_READ_ONLY');
    } finally {
      chmodSync(gw.configFile, 0o644);
    }
  });

  it('never crashes on random bodies: problem+json or 200, and the file changes only when the answer is 200', async (t) => {
    const seen = new Map<number, number>();
    const key = fc.constantFrom('orders', 'inventory', 'fresh', '__proto__', 'constructor', 'a b', '%41');
    const value = fc.jsonValue({ maxDepth: 3 });
    const params = fc.oneof(fc.dictionary(fc.stringMatching(/^[a-z_]{1,12}$/), fc.oneof(fc.string(), fc.integer())), value);
    const connectionBody = fc.oneof(
      value,
      fc.record(
        {
          clientId: fc.oneof(fc.stringMatching(/^[a-z-]{1,12}$/), value),
          tokenUrl: fc.oneof(fc.constant(oidc.tokenUrl), fc.string(), value),
          clientSecret: fc.oneof(
            fc.record(
              { secret: fc.constantFrom('client-secret', 'admin-key', 'x'), method: fc.constantFrom('client_secret_post', 'nope') },
              { requiredKeys: ['secret'] },
            ),
            value,
          ),
          params,
          displayName: fc.oneof(fc.string(), value),
        },
        { requiredKeys: ['clientId', 'tokenUrl', 'clientSecret'] },
      ),
    );
    const routeBody = fc.oneof(
      value,
      fc.record(
        {
          type: fc.oneof(fc.constantFrom('none', 'client-connection'), value),
          connection: fc.oneof(fc.constantFrom('orders', 'inventory', 'nope'), value),
          params,
        },
        { requiredKeys: [] },
      ),
    );
    const versionKind = fc.constantFrom('current', 'stale', 'absent');
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        key,
        connectionBody,
        routeBody,
        versionKind,
        async (toConnection, name, connection, routeAuth, kind) => {
          const before = readFileSync(gw.configFile);
          const current = await version(gw);
          const withVersion = (body: unknown) =>
            typeof body === 'object' && body !== null && !Array.isArray(body) && kind !== 'absent'
              ? { ...body, version: kind === 'current' ? current : 'stale-version' }
              : body;
          const answer = toConnection
            ? await send(gw, 'PUT', `/connections/${encodeURIComponent(name)}`, withVersion(connection), bearer)
            : await send(
                gw,
                'PUT',
                `/routes/${name === 'orders' ? 'orders-api' : encodeURIComponent(name)}/auth`,
                withVersion(routeAuth),
                bearer,
              );
          seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
          if (answer.status === 200) return;
          assert.match(answer.type, /^application\/problem\+json/, `${answer.status} ${answer.text}`);
          assert.ok(answer.status >= 400 && answer.status < 500, answer.text);
          assert.deepEqual(readFileSync(gw.configFile), before, 'a refused change left the file as it was');
          assert.ok(!answer.text.includes(CLIENT_SECRET) && !answer.text.includes(ADMIN_KEY));
        },
      ),
      { numRuns: 80 },
    );
    t.diagnostic(`answers by status: ${JSON.stringify(Object.fromEntries(seen))}`);
    assert.equal((await fetch(`${gw.admin}/healthz`)).status, 200);
  });
});

describe('console admin API with admin.console.edit: false', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(yaml('http://127.0.0.1:9/token', false), { env });
  });
  after(() => gw.stop());

  it('refuses changes with 403 ADMIN_FORBIDDEN even with a valid key, and says editing is off', async () => {
    const file = readFileSync(gw.configFile);
    const answer = await send(gw, 'PUT', '/routes/orders-api/auth', { type: 'none', version: await version(gw) }, bearer);
    assert.equal(answer.status, 403);
    assert.equal(answer.json.code, 'ADMIN_FORBIDDEN');
    assert.equal((await send(gw, 'GET', '/console/state', undefined, bearer)).json.edit, false);
    assert.deepEqual(readFileSync(gw.configFile), file);
  });
});
