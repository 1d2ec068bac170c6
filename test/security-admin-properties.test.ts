/**
 * Generated attacks on the admin plane: config files and admin bodies with a secret's value pasted
 * where a secret name, a URL's user info or a credential parameter belongs, and an authorization
 * server quoting the secret back. Whatever the generator picks, no admin answer and no log line
 * holds a value from `secrets:` in any spelling: raw, URL-encoded, form-encoded, or base64 of
 * `id:secret` (plain or form-encoded, RFC 6749 §2.3.1).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { startGateway, type TestGateway } from './support/gateway.js';
import { json, startServer, type TestServer } from './support/servers.js';

const ADMIN_KEY = 'admin-key-0123456789abcdef';
const CLIENT_ID = 'prop client';
const bearer = { authorization: `Bearer ${ADMIN_KEY}` };

/** Characters that each encoding spells differently: `@ : / + % & = #`, space, quotes, non-ASCII. */
const secretValue = fc
  .string({
    unit: fc.constantFrom(...'abcXYZ0189@:/+%&=# "\'\\é€-_.~*'.split('')),
    minLength: 12,
    maxLength: 28,
  })
  .map((text) => `Q7${text}`);

const formEncode = (text: string) => new URLSearchParams({ s: text }).toString().slice(2);
const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

function spellings(secret: string, clientId = CLIENT_ID): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    formEncode(secret),
    base64(`${clientId}:${secret}`),
    base64(`${formEncode(clientId)}:${formEncode(secret)}`),
  ];
}

function assertNoSpelling(texts: readonly string[], secret: string): void {
  const all = texts.join('\n');
  for (const spelling of spellings(secret)) assert.ok(!all.includes(spelling), `found ${JSON.stringify(spelling)}`);
}

async function get(gw: TestGateway, path: string): Promise<string> {
  const response = await fetch(`${gw.admin}${path}`, { headers: bearer });
  return `${response.status} ${await response.text()}`;
}

async function send(gw: TestGateway, method: string, path: string, body: unknown): Promise<{ status: number; text: string }> {
  const response = await fetch(`${gw.admin}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...bearer },
    body: JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

/** Every admin read an operator (or an attacker with a session) can make. */
async function everyRead(gw: TestGateway, connections: readonly string[]): Promise<string[]> {
  const paths = ['/console/state', '/routes', '/connections', '/usage', '/usage/history', '/metrics'];
  return Promise.all([...paths, ...connections.map((key) => `/connections/${encodeURIComponent(key)}`)].map((path) => get(gw, path)));
}

function baseConfig(secret: string): Record<string, unknown> {
  return {
    admin: { auth: { apiKeys: [{ secret: 'admin-key' }] }, console: { edit: true }, port: 0 },
    secrets: {
      'admin-key': { env: 'TG_ADMIN_KEY' },
      pasted: { value: secret },
      'client-secret': { value: 'client-secret-0123456789' },
    },
    connections: {
      orders: { clientId: CLIENT_ID, tokenUrl: 'http://127.0.0.1:9/token', clientSecret: { secret: 'client-secret' } },
    },
    routes: [{ name: 'orders-api', match: { pathPrefix: '/orders' }, upstream: 'http://127.0.0.1:9', auth: { connection: 'orders' } }],
  };
}

type Paste = (config: Record<string, any>, secret: string) => void;

/** Places in the file where a secret's value gets pasted by hand. */
const FILE_PASTES: Record<string, Paste> = {
  'secret name': (c, s) => (c.connections.orders.clientSecret = { secret: s }),
  'secret instead of a block': (c, s) => (c.connections.orders.clientSecret = s),
  'private key name': (c, s) => (c.connections.pkj = { clientId: 'x', tokenUrl: 'http://127.0.0.1:9/t', privateKeyJwt: { secret: s } }),
  'mTLS key name': (c, s) =>
    (c.connections.mtls = { clientId: 'x', tokenUrl: 'https://127.0.0.1:9/t', tlsClientAuth: { certificate: 'pasted', key: s } }),
  'dpop key name': (c, s) => (c.connections.orders.dpop = { key: s }),
  'token URL user info': (c, s) =>
    (c.connections.orders.tokenUrl = `https://${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(s)}@127.0.0.1:9/token`),
  'issuer user info': (c, s) =>
    (c.connections.disc = {
      clientId: 'x',
      issuer: `https://u:${encodeURIComponent(s)}@127.0.0.1:9`,
      clientSecret: { secret: 'client-secret' },
    }),
  'token URL query': (c, s) => (c.connections.orders.tokenUrl = `http://127.0.0.1:9/token?client_secret=${encodeURIComponent(s)}&a=1`),
  'client_secret param': (c, s) => (c.connections.orders.params = { client_secret: s }),
  'client_assertion param': (c, s) => (c.connections.orders.params = { client_assertion: s, scope: 'read' }),
  'password param': (c, s) => (c.connections.orders.params = { password: s }),
  'unknown key': (c, s) => (c.connections.orders.password = s),
  'upstream user info': (c, s) => (c.routes[0].upstream = `https://user:${encodeURIComponent(s)}@127.0.0.1:9`),
  'route password param': (c, s) => (c.routes[0].auth.params = { PASSWORD: s }),
  'route tls key name': (c, s) => (c.routes[0].tls = { certificate: 'pasted', key: s }),
  'access key name': (c, s) => (c.access = { apiKeys: [{ secret: s }] }),
  'admin key name': (c, s) => {
    (c.admin.auth.apiKeys as unknown[]).push({ secret: s });
  },
};

describe('admin plane properties: secrets pasted into the file', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(stringify(baseConfig('Q7-initial-0123456789')), { env: { ...process.env, TG_ADMIN_KEY: ADMIN_KEY } });
  });
  after(() => gw.stop());

  it('no admin answer or log line holds the value, wherever it is pasted', async (t) => {
    let loaded = 0;
    await fc.assert(
      fc.asyncProperty(secretValue, fc.subarray(Object.keys(FILE_PASTES), { minLength: 1, maxLength: 4 }), async (secret, places) => {
        const config = baseConfig(secret);
        for (const place of places) FILE_PASTES[place]!(config, secret);
        writeFileSync(gw.configFile, stringify(config));
        if ((await gw.gateway.reload()).ok) loaded++;
        const answers = await everyRead(gw, Object.keys(config.connections as object));
        assertNoSpelling([...answers, gw.logText()], secret);
        for (const answer of answers) assert.ok(!answer.startsWith('5'), answer);
      }),
      { numRuns: 60 },
    );
    t.diagnostic(`files that loaded: ${loaded} of 60`);
  });
});

/** Places in an admin body where a secret's value gets pasted. */
const BODY_PASTES: Record<string, (body: Record<string, any>, secret: string) => void> = {
  'secret name': (b, s) => (b.clientSecret = { secret: s }),
  'secret instead of a block': (b, s) => (b.clientSecret = s),
  'token URL user info': (b, s) => (b.tokenUrl = `http://id:${encodeURIComponent(s)}@127.0.0.1:9/token`),
  'token URL query': (b, s) => (b.tokenUrl = `http://127.0.0.1:9/token?password=${encodeURIComponent(s)}`),
  'password param': (b, s) => (b.params = { ...(b.params as object), password: s }),
  'client_secret param': (b, s) => (b.params = { ...(b.params as object), client_secret: s }),
  'client_assertion param': (b, s) => (b.params = { ...(b.params as object), client_assertion: s }),
  'unknown key': (b, s) => (b.secretValue = s),
  'private key name': (b, s) => {
    delete b.clientSecret;
    b.privateKeyJwt = { secret: s };
  },
};

describe('admin plane properties: secrets pasted into admin bodies', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(stringify(baseConfig('Q7-initial-0123456789')), { env: { ...process.env, TG_ADMIN_KEY: ADMIN_KEY } });
  });
  after(() => gw.stop());

  it('no answer to the change, no later read and no log line holds the value; a refused change leaves the file alone', async (t) => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        secretValue,
        fc.subarray(Object.keys(BODY_PASTES), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        async (secret, places, toRoute) => {
          const file = stringify(baseConfig(secret));
          writeFileSync(gw.configFile, file);
          assert.equal((await gw.gateway.reload()).ok, true);
          const version = JSON.parse((await get(gw, '/console/state')).slice(4)).version as string;
          let answer: { status: number; text: string };
          if (toRoute) {
            answer = await send(gw, 'PUT', '/routes/orders-api/auth', {
              connection: 'orders',
              params: { password: secret, scope: 'a' },
              version,
            });
          } else {
            const body: Record<string, any> = {
              clientId: CLIENT_ID,
              tokenUrl: 'http://127.0.0.1:9/token',
              clientSecret: { secret: 'client-secret' },
              params: { scope: 'read' },
            };
            for (const place of places) BODY_PASTES[place]!(body, secret);
            answer = await send(gw, 'PUT', '/connections/pasted-here', { ...body, version });
          }
          seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
          assert.ok(answer.status === 200 || answer.status === 422, `${answer.status} ${answer.text}`);
          if (answer.status === 422) assert.equal(readFileSync(gw.configFile, 'utf8'), file);
          const tested = await send(gw, 'POST', `/connections/${toRoute ? 'orders' : 'pasted-here'}/test`, {});
          const answers = await everyRead(gw, ['orders', 'pasted-here']);
          assertNoSpelling([answer.text, tested.text, ...answers, gw.logText()], secret);
        },
      ),
      { numRuns: 60 },
    );
    t.diagnostic(`answers by status: ${JSON.stringify(Object.fromEntries(seen))}`);
  });
});

describe('admin plane properties: an authorization server quoting the secret', () => {
  let gw: TestGateway;
  let quoting: TestServer;
  before(async () => {
    // Quotes everything it was sent, decoded and as sent, in error_description (and in error).
    quoting = await startServer((req, res, body) => {
      const form = new URLSearchParams(body.toString('utf8'));
      const header = req.headers.authorization ?? '';
      const basic = header.replace(/^Basic /, '');
      const quoted = [body.toString('utf8'), header, form.get('client_secret') ?? '', Buffer.from(basic, 'base64').toString('utf8')];
      const sent =
        form.get('client_secret') ?? decodeURIComponent(Buffer.from(basic, 'base64').toString('utf8').split(':')[1]!.replaceAll('+', ' '));
      quoted.push(encodeURIComponent(sent), encodeURIComponent(sent).toLowerCase(), base64(`${CLIENT_ID}:${sent}`));
      json(res, 401, { error: 'invalid_client', error_description: `rejected: ${quoted.join(' / ')}` });
    });
    const config = baseConfig('Q7-unused-0123456789');
    (config.secrets as Record<string, unknown>)['client-secret'] = { file: 'client-secret.txt' };
    (config.connections as Record<string, any>).orders.tokenUrl = `${quoting.url}/token`;
    gw = await startGateway(stringify(config), {
      env: { ...process.env, TG_ADMIN_KEY: ADMIN_KEY },
      files: { 'client-secret.txt': 'Q7-first-0123456789' },
    });
  });
  after(async () => {
    await gw.stop();
    await quoting.close();
  });

  it('is scrubbed of every spelling in the caller’s answer, the Test answer, /usage and the logs', async () => {
    await fc.assert(
      fc.asyncProperty(secretValue, fc.constantFrom('client_secret_basic', 'client_secret_post'), async (secret, method) => {
        writeFileSync(join(gw.dir, 'client-secret.txt'), secret);
        const config = baseConfig('Q7-unused-0123456789');
        (config.secrets as Record<string, unknown>)['client-secret'] = { file: 'client-secret.txt' };
        Object.assign((config.connections as Record<string, any>).orders, {
          tokenUrl: `${quoting.url}/token`,
          clientSecret: { secret: 'client-secret', method },
        });
        writeFileSync(gw.configFile, stringify(config));
        assert.equal((await gw.gateway.reload()).ok, true);
        const caller = await fetch(`${gw.url}/orders/x`);
        const callerText = await caller.text();
        assert.match(callerText, /invalid_client/);
        const tested = await send(gw, 'POST', '/connections/orders/test', {});
        assert.match(tested.text, /\[redacted\]/);
        assertNoSpelling([callerText, tested.text, ...(await everyRead(gw, ['orders'])), gw.logText()], secret);
      }),
      { numRuns: 40 },
    );
  });
});
