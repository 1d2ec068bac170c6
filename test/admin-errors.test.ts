/** The admin listener answers refusals as problem+json with a stable code, and a malformed request without a stack trace. */
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

  it('answers a malformed %-escape in /connections/KEY/test with a problem+json 400 BAD_REQUEST, no stack trace or file paths', async () => {
    const response = await fetch(`${gw.admin}/connections/%ZZ/test`, { method: 'POST' });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    const text = await response.text();
    assert.deepEqual(JSON.parse(text), {
      type: 'https://tokengate.dev/problems/bad-request',
      title: 'Bad request',
      status: 400,
      detail: 'the request is malformed',
      code: 'BAD_REQUEST',
    });
    assert.doesNotMatch(text, /node_modules|URIError|\bat /);
  });

  it('answers POST /connections/KEY/test for an unknown connection with a problem+json 404 NOT_FOUND', async () => {
    const response = await fetch(`${gw.admin}/connections/nope/test`, { method: 'POST' });
    assert.equal(response.status, 404);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    const problem = (await response.json()) as { code: string; detail: string };
    assert.equal(problem.code, 'NOT_FOUND');
    assert.equal(problem.detail, 'unknown connection nope');
  });
});
