/// <reference lib="dom" />
/**
 * The console end to end in a real browser (Debian's chromium), against a real authorization
 * server (oidc-provider) and an echo upstream: sign in, add a connection through the form,
 * attach it to a route, send traffic, test, troubleshoot, and the refusals a person meets.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, Response } from 'playwright-core';
import { ARTIFACTS, launchChromium, requireChromium } from './support/browser.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startOidcProvider, type OidcServer } from './support/oidc.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';

const ADMIN_KEY = randomBytes(18).toString('base64url');
const CLIENT_SECRET = randomBytes(24).toString('base64url');
const WRONG_SECRET = randomBytes(24).toString('base64url');
const env = { ...process.env, TG_ADMIN_KEY: ADMIN_KEY, TG_CLIENT_SECRET: CLIENT_SECRET, TG_WRONG_SECRET: WRONG_SECRET };

describe('console in a browser', requireChromium(), () => {
  let oidc: OidcServer;
  let upstream: TestServer;
  let gw: TestGateway;
  let browser: Browser;
  let page: Page;
  /** Every answer the page received, to check that no secret or token is in any of them. */
  const answers: string[] = [];
  const cspViolations: string[] = [];
  let firstLoadBytes = 0;

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `console-${name}.png`), fullPage: true });
  const nav = (name: string) => page.getByRole('navigation').getByRole('link', { name, exact: true }).click();
  const row = (name: string) => page.getByRole('row').filter({ has: page.getByRole('rowheader', { name, exact: true }) });

  before(async () => {
    oidc = await startOidcProvider([
      { client_id: 'console-client', client_secret: CLIENT_SECRET },
      { client_id: 'broken-client', client_secret: randomBytes(24).toString('base64url') },
    ]);
    upstream = await startEchoUpstream();
    gw = await startGateway(
      `# Console test config: this comment must survive every edit.
admin:
  auth:
    apiKeys: [ { secret: admin-key } ] # the key the console signs in with
  console: { edit: true }
secrets:
  admin-key: { env: TG_ADMIN_KEY }
  partner-secret: { env: TG_CLIENT_SECRET } # the real client secret
  wrong-secret: { env: TG_WRONG_SECRET }
connections:
  broken: # a client whose secret is wrong
    displayName: Broken partner
    clientId: broken-client
    tokenUrl: ${oidc.tokenUrl}
    clientSecret: { secret: wrong-secret }
routes:
  - name: orders # the console attaches a connection to this route
    match: { pathPrefix: /orders }
    upstream: ${upstream.url}
    stripPrefix: true
    auth: { type: none }
  - name: broken-route
    match: { pathPrefix: /broken }
    upstream: ${upstream.url}
    auth: { connection: broken }
`,
      { env },
    );
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(8_000);
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    page.on('pageerror', (error) => cspViolations.push(`page error: ${error.message}`));
    page.on('response', (response: Response) => {
      void response
        .text()
        .then((text) => answers.push(text))
        .catch(() => undefined);
    });
  });

  after(async () => {
    await browser?.close();
    await gw?.stop();
    await upstream?.close();
    await oidc?.close();
  });

  it('serves the page from the admin listener with a strict CSP, asks for the admin key, and signs in', async () => {
    const requests: Promise<{ url: string; bytes: number }>[] = [];
    const count = (answer: Response) =>
      requests.push(
        answer
          .request()
          .sizes()
          .then((s) => ({ url: new URL(answer.url()).pathname, bytes: s.responseBodySize + s.responseHeadersSize })),
      );
    page.on('response', count);
    const response = await page.goto(gw.admin, { waitUntil: 'networkidle' });
    page.off('response', count);
    const transferred = await Promise.all(requests);
    firstLoadBytes = transferred.reduce((sum, r) => sum + r.bytes, 0);
    writeFileSync(join(ARTIFACTS, 'console-page-weight.json'), `${JSON.stringify({ firstLoadBytes, requests: transferred }, null, 2)}\n`);
    const csp = response?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    await page.getByLabel('Admin key').waitFor();
    await shot('sign-in');
    await page.getByLabel('Admin key').fill('not-the-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('that is not an admin key').waitFor();
    await page.getByLabel('Admin key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('searchbox', { name: 'Search connections' }).waitFor();
    await row('broken').waitFor();
    await shot('connections');
  });

  it('adds a connection through the form; the file keeps its comments and passes validate', async () => {
    await page.getByRole('button', { name: 'Add connection' }).click();
    await page.getByLabel('Key', { exact: true }).fill('partner');
    await page.getByLabel('Display name').fill('Partner API');
    await page.getByLabel('Client ID').fill('console-client');
    // Validated as typed: not a URL yet.
    await page.getByLabel('Access token URL').fill('auth.example');
    await page.getByText('An absolute http: or https: URL.').waitFor();
    await page.getByLabel('Access token URL').fill(oidc.tokenUrl);
    assert.equal(await page.getByText('An absolute http: or https: URL.').count(), 0);
    await page.getByLabel('Secret configuration').selectOption({ label: 'Client secret' });
    await page.getByLabel('Secret', { exact: true }).selectOption('partner-secret');
    await page.getByLabel('Client authentication method').selectOption('client_secret_post');
    await page.getByRole('button', { name: 'Add parameter' }).click();
    await page.getByRole('group', { name: 'Additional parameters' }).getByLabel('Name').fill('scope');
    await page.getByRole('group', { name: 'Additional parameters' }).getByLabel('Value').fill('orders.read');
    await shot('connection-form');
    await page.getByRole('button', { name: 'Save connection' }).click();
    await page.getByText('Saved connection partner.').waitFor();
    await row('partner').waitFor();
    const text = readFileSync(gw.configFile, 'utf8');
    assert.match(text, /# Console test config: this comment must survive every edit\./);
    assert.match(text, /# a client whose secret is wrong/);
    assert.match(text, /partner:\n\s+displayName: Partner API\n\s+clientId: console-client/);
    assert.ok(!text.includes(CLIENT_SECRET), 'the console never writes a secret value');
    const validate = spawnSync(process.execPath, ['dist/cli.js', 'validate', '--config', gw.configFile], { env, encoding: 'utf8' });
    assert.equal(validate.status, 0, validate.stdout + validate.stderr);
  });

  it('shows an invalid edit at its field and leaves the file byte for byte unchanged', async () => {
    const before = readFileSync(gw.configFile);
    await page.getByRole('button', { name: 'Add connection' }).click();
    await page.getByLabel('Key', { exact: true }).fill('signed');
    await page.getByLabel('Client ID').fill('console-client');
    await page.getByLabel('Access token URL').fill(oidc.tokenUrl);
    await page.getByLabel('Secret configuration').selectOption({ label: 'Private key JWT' });
    // A client secret is not a private key: only the server can tell.
    await page.getByLabel('Secret', { exact: true }).selectOption('partner-secret');
    await page.getByRole('button', { name: 'Save connection' }).click();
    const secretField = page.getByLabel('Secret', { exact: true });
    await page.locator('#connection-secret[aria-invalid="true"]').waitFor();
    const describedBy = (await secretField.getAttribute('aria-describedby')) ?? '';
    const message = await page.locator(`#${describedBy.split(' ')[0]}`).textContent();
    assert.match(message ?? '', /private key/);
    await shot('connection-invalid');
    assert.deepEqual(readFileSync(gw.configFile), before);
    await page.getByRole('button', { name: 'Cancel' }).click();
  });

  it('edits a connection: the form shows it as configured, and saving changes only what was changed', async () => {
    await row('broken').getByRole('button', { name: 'Edit' }).click();
    assert.equal(await page.getByLabel('Client ID').inputValue(), 'broken-client');
    assert.equal(await page.getByLabel('Secret', { exact: true }).inputValue(), 'wrong-secret');
    await page.getByLabel('Client authentication method').selectOption('client_secret_post');
    await page.getByRole('button', { name: 'Save connection' }).click();
    await page.getByText('Saved connection broken.').waitFor();
    const text = readFileSync(gw.configFile, 'utf8');
    assert.match(text, /broken: # a client whose secret is wrong\n\s+displayName: Broken partner\n/);
    assert.match(text, /clientSecret: \{ secret: wrong-secret, method: client_secret_post \}/);
  });

  it('Test shows success for the new connection', async () => {
    await row('partner').getByRole('button', { name: 'Test' }).click();
    await page.getByText(/Test of partner succeeded/).waitFor();
  });

  it('attaches the connection to a route; a request reaches the upstream with a token the server issued', async () => {
    await nav('Routes');
    await row('orders').getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Auth type').selectOption({ label: 'Client connection' });
    await page.getByRole('combobox', { name: 'Client connection' }).fill('partner');
    await page.getByRole('button', { name: 'Add override' }).click();
    await page.getByRole('group', { name: 'Parameter overrides' }).getByLabel('Name').fill('scope');
    await page.getByRole('group', { name: 'Parameter overrides' }).getByLabel('Value').fill('orders.write');
    await shot('route-form');
    await page.getByRole('button', { name: 'Save route' }).click();
    await page.getByText('Saved route orders.').waitFor();
    await row('orders').getByText('partner (scope=orders.write)').waitFor();
    await shot('routes');

    const answer = await fetch(`${gw.url}/orders/42`);
    assert.equal(answer.status, 200);
    const echoed = (await answer.json()) as { url: string; authorization: string };
    assert.equal(echoed.url, '/42');
    const token = echoed.authorization.replace(/^Bearer /, '');
    const introspection = await oidc.introspect(token);
    assert.equal(introspection.active, true);
    assert.equal(introspection.client_id, 'console-client');
    assert.equal(introspection.scope, 'orders.write');
    answers.push(`token:${token}`); // checked below: no answer the page got may contain it
    assert.ok(!(await page.content()).includes(token));
  });

  it('shows invalid_client for the connection with a wrong secret in Usage Data after traffic', async () => {
    assert.equal((await fetch(`${gw.url}/broken/x`)).status, 502);
    await nav('Usage Data');
    const section = page.getByRole('region', { name: 'Broken partner' });
    await section.getByText('invalid_client').waitFor();
    const failures = page.getByRole('table', { name: 'Recent failures' });
    await failures.getByRole('cell', { name: 'invalid_client', exact: true }).first().waitFor();
    await page.getByRole('region', { name: 'Partner API' }).waitFor();
    await page.locator('.uplot').first().waitFor();
    await shot('usage-data');
    // It refreshes by itself: more traffic shows up without navigating (a cached token: the hit ratio moves).
    const ratio = page.getByRole('region', { name: 'Partner API' }).locator('dt:text-is("Cache hit ratio") + dd');
    const shown = await ratio.textContent();
    assert.equal((await fetch(`${gw.url}/orders/43`)).status, 200);
    await page.waitForFunction(
      ([selector, before]) => document.querySelector(selector)?.textContent !== before,
      ['section[aria-labelledby="usage-partner"] dl div:nth-child(4) dd', shown] as const,
      { timeout: 15_000 },
    );
  });

  it('refuses to delete a connection in use, naming the route', async () => {
    const before = readFileSync(gw.configFile);
    await nav('Connections');
    page.once('dialog', (dialog) => void dialog.accept());
    await row('partner').getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Cannot delete partner: used by route orders.').waitFor();
    await page.getByRole('searchbox', { name: 'Search connections' }).fill('api');
    await row('broken').waitFor({ state: 'detached' });
    await row('partner').waitFor();
    assert.deepEqual(readFileSync(gw.configFile), before);
    await shot('delete-refused');
  });

  it('refuses a deletion after someone else changed the file since the list was read, says so, and deletes once re-read', async () => {
    const admin = async (method: string, path: string, body?: unknown) => {
      const answer = await fetch(`${gw.admin}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: answer.status, json: (await answer.json()) as Record<string, any> };
    };
    const fileVersion = async () => (await admin('GET', '/console/state')).json.version as string;
    const spare = { clientId: 'console-client', tokenUrl: oidc.tokenUrl, clientSecret: { secret: 'partner-secret' } };
    // A connection no route uses, added elsewhere; the list is read with it.
    assert.equal((await admin('PUT', '/connections/spare', { ...spare, version: await fileVersion() })).status, 200);
    await nav('Routes');
    await nav('Connections');
    await row('spare').waitFor();
    // Someone else changes the file while the person looks at that list.
    const renamed = { ...spare, displayName: 'Spare, renamed elsewhere', version: await fileVersion() };
    assert.equal((await admin('PUT', '/connections/spare', renamed)).status, 200);
    const before = readFileSync(gw.configFile);
    page.once('dialog', (dialog) => void dialog.accept());
    await row('spare').getByRole('button', { name: 'Delete' }).click();
    await page.getByText(/Did not delete spare: the config file changed since this list was read\./).waitFor();
    await shot('delete-stale');
    assert.deepEqual(readFileSync(gw.configFile), before);
    // The refusal re-read the list with the file's version: what the other person changed shows, and deleting now works.
    await row('spare').getByRole('cell', { name: 'Spare, renamed elsewhere' }).waitFor();
    page.once('dialog', (dialog) => void dialog.accept());
    await row('spare').getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Deleted connection spare.').waitFor();
    await row('spare').waitFor({ state: 'detached' });
    assert.doesNotMatch(readFileSync(gw.configFile, 'utf8'), /spare:/);
  });

  it('is usable by keyboard: Tab reaches the navigation and Enter follows it', async () => {
    await page.locator('body').focus();
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement?.textContent)) === 'Routes') break;
    }
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Routes' }).waitFor();
  });

  it('shows secrets pasted into the file as ***: neither the connection form nor the Routes view holds them', async () => {
    const original = readFileSync(gw.configFile, 'utf8');
    const pasted = [randomBytes(18).toString('base64url'), randomBytes(18).toString('base64url')];
    try {
      writeFileSync(
        gw.configFile,
        original
          .replace('clientId: broken-client', `clientId: broken-client\n    params: { password: ${pasted[0]} }`)
          .replace('auth: { connection: broken }', `auth: { connection: broken, params: { password: ${pasted[1]} } }`),
      );
      await nav('Connections');
      await row('broken').getByRole('button', { name: 'Edit' }).click();
      await page.getByRole('button', { name: 'Save connection' }).waitFor();
      // Field values are properties, not attributes: page.content() alone would not show them.
      const shown = () =>
        page.evaluate(() =>
          [
            document.documentElement.outerHTML,
            ...[...document.querySelectorAll('input, textarea, select')].map((field) => (field as HTMLInputElement).value),
          ].join('\n'),
        );
      const form = await shown();
      assert.ok(form.includes('\n***'), 'the pasted parameter is shown masked');
      await nav('Routes');
      await row('broken-route').waitFor();
      const routes = await shown();
      for (const value of pasted) assert.ok(!form.includes(value) && !routes.includes(value), 'a pasted secret reached the page');
    } finally {
      writeFileSync(gw.configFile, original);
    }
  });

  it('never put a secret, admin key or token in the page or any answer, and broke no CSP rule', async () => {
    const token = answers.find((a) => a.startsWith('token:'))?.slice('token:'.length);
    const everything = answers.filter((a) => !a.startsWith('token:')).join('\n') + (await page.content());
    for (const value of [CLIENT_SECRET, WRONG_SECRET, ADMIN_KEY, token ?? 'no-token-seen'])
      assert.ok(!everything.includes(value), 'a secret value reached the page');
    assert.deepEqual(cspViolations, []);
    assert.ok(firstLoadBytes > 0);
  });
});
