/** The admin listener answers a malformed request without a stack trace. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';

describe('admin errors', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
routes: []
`);
  });

  after(async () => {
    await gw.stop();
  });

  it('answers a malformed %-escape in /connections/KEY/test with a JSON 400, no stack trace or file paths', async () => {
    const response = await fetch(`${gw.admin}/connections/%ZZ/test`, { method: 'POST' });
    assert.equal(response.status, 400);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const text = await response.text();
    assert.deepEqual(JSON.parse(text), { error: 'bad request' });
    assert.doesNotMatch(text, /node_modules|URIError|\bat /);
  });
});
