/// <reference lib="dom" />
/**
 * Single sign-on in a real browser (Debian's chromium) against a real OpenID provider
 * (oidc-provider with its own login page): an editor, a viewer and a user with no role sign in the
 * way people do. The editor's change is audited with their identity; the viewer is shown no edit
 * controls at all and the server refuses their changing call; the user with no role is told so
 * and holds no session.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ARTIFACTS, launchChromium, requireChromium } from './support/browser.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { listenPeopleProvider, type PeopleProvider } from './support/oidc-people.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';

const ADMIN_KEY = randomBytes(18).toString('base64url');
const CONSOLE_SECRET = randomBytes(24).toString('base64url');
const CLIENT_SECRET = randomBytes(24).toString('base64url');
const env = { ...process.env, TG_ADMIN_KEY: ADMIN_KEY, TG_CONSOLE_SECRET: CONSOLE_SECRET, TG_CLIENT_SECRET: CLIENT_SECRET };

describe('single sign-on in a browser', requireChromium(), () => {
  let idp: PeopleProvider;
  let upstream: TestServer;
  let gw: TestGateway;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  const row = (page: Page, name: string) => page.getByRole('row').filter({ has: page.getByRole('rowheader', { name, exact: true }) });
  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `console-sso-${name}.png`), fullPage: true });

  /** A fresh browser profile (no provider session) that signs `login` in through the provider's page. */
  async function signIn(login: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    await page.goto(gw.admin);
    await page.getByRole('button', { name: 'Sign in with single sign-on' }).click();
    await page.getByLabel('Username').fill(login);
    await page.getByRole('button', { name: 'Sign in' }).click();
    return page;
  }

  before(async () => {
    // Another site than the admin listener (127.0.0.1), as a company's provider is: the trip back
    // to /auth/callback is a cross-site navigation, which SameSite=Strict cookies do not survive.
    idp = await listenPeopleProvider({ host: '127.0.0.2' });
    upstream = await startEchoUpstream();
    gw = await startGateway(
      `admin:
  auth:
    apiKeys: [ { secret: admin-key } ]
    oidc:
      issuer: ${idp.issuer}
      clientId: tokengate-console
      clientSecret: { secret: console-secret }
      scopes: [ openid, profile, email, groups ]
      roles: { claim: groups, editors: [ platform-admins ], viewers: [ platform-team ] }
  console: { edit: true }
secrets:
  admin-key: { env: TG_ADMIN_KEY }
  console-secret: { env: TG_CONSOLE_SECRET }
  partner-secret: { env: TG_CLIENT_SECRET }
connections:
  partner:
    displayName: Partner API
    clientId: partner-client
    tokenUrl: http://127.0.0.1:9/token
    clientSecret: { secret: partner-secret }
routes:
  - name: orders
    match: { pathPrefix: /orders }
    upstream: ${upstream.url}
    auth: { connection: partner }
`,
      { env },
    );
    idp.start([{ client_id: 'tokengate-console', client_secret: CONSOLE_SECRET, redirect_uris: [`${gw.admin}/auth/callback`] }]);
    browser = await launchChromium();
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await gw?.stop();
    await upstream?.close();
    await idp?.close();
  });

  it('offers single sign-on beside the admin key field', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(gw.admin);
    await page.getByRole('button', { name: 'Sign in with single sign-on' }).waitFor();
    await page.getByLabel('Admin key').waitFor();
    await shot(page, 'sign-in');
  });

  it('signs an editor in, shows their name and role, and audits their change with their identity', async () => {
    const page = await signIn('ed.itor');
    await page.getByText('Edith Editor').waitFor();
    assert.equal(await page.locator('header .role').textContent(), 'editor');
    await row(page, 'partner').waitFor();
    await shot(page, 'editor');
    await page.getByRole('navigation').getByRole('link', { name: 'Routes', exact: true }).click();
    await row(page, 'orders').getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Auth type').selectOption({ label: 'None' });
    await page.getByRole('button', { name: 'Save route' }).click();
    await page.getByText('Saved route orders.').waitFor();
    assert.match(readFileSync(gw.configFile, 'utf8'), /auth: \{ type: none \}|type: none/);
    const line = gw.logs.find((l) => l.event === 'admin_audit' && l.action === 'route_auth_replace');
    assert.ok(line !== undefined, 'the change is audited');
    assert.equal(line.sub, 'ed.itor');
    assert.equal(line.email, 'edith@example.com');
    assert.equal(line.role, 'editor');
    assert.equal(line.target, 'routes.orders.auth');
  });

  it('shows a viewer no edit controls at all, keeps Test, and the server refuses their change with 403', async () => {
    const page = await signIn('vi.ewer');
    await page.getByText('Victor Viewer').waitFor();
    assert.equal(await page.locator('header .role').textContent(), 'viewer');
    await row(page, 'partner').waitFor();
    for (const name of ['Add connection', 'Edit', 'Delete']) assert.equal(await page.getByRole('button', { name }).count(), 0, name);
    assert.equal(await row(page, 'partner').getByRole('button', { name: 'Test' }).count(), 1);
    await shot(page, 'viewer');
    await page.getByRole('navigation').getByRole('link', { name: 'Routes', exact: true }).click();
    await row(page, 'orders').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Edit' }).count(), 0);
    await page.getByRole('navigation').getByRole('link', { name: 'Usage Data', exact: true }).click();
    await page.getByRole('region', { name: 'Partner API' }).waitFor();
    // What a viewer's browser could still send by hand: refused by the server, the file unchanged.
    const before = readFileSync(gw.configFile);
    const answer = await page.evaluate(async () => {
      const version = ((await (await fetch('/routes')).json()) as { version: string }).version;
      const response = await fetch('/routes/orders/auth', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ connection: 'partner', version }),
      });
      return { status: response.status, body: (await response.json()) as { code?: string } };
    });
    assert.equal(answer.status, 403);
    assert.equal(answer.body.code, 'ADMIN_FORBIDDEN');
    assert.deepEqual(readFileSync(gw.configFile), before);
  });

  it('tells a user with no role that they have none (403) and gives them no session', async () => {
    const page = await signIn('no.role');
    await page.getByRole('heading', { name: 'Sign-in refused' }).waitFor();
    await page.getByText('ADMIN_FORBIDDEN').waitFor();
    await shot(page, 'no-role');
    const cookies = await page.context().cookies(gw.admin);
    assert.ok(!cookies.some((c) => c.name === 'tokengate_session' && c.value !== ''), 'no session cookie');
    await page.goto(gw.admin);
    await page.getByRole('button', { name: 'Sign in with single sign-on' }).waitFor();
    assert.ok(gw.logs.some((l) => l.event === 'admin_audit' && l.action === 'sign_in_refused' && l.sub === 'no.role'));
  });
});
