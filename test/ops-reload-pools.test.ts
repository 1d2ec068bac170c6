/**
 * Upstream socket pools across a hot reload: a pool no route uses any more is closed once the old
 * config's requests have had listen.drainTimeoutMs to finish; a pool still in use is kept.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startEchoUpstream, type TestServer } from './support/servers.js';
import { waitFor } from './support/wait.js';

const DRAIN_MS = 300;

const yaml = (upstream: string) => `
listen: { host: 127.0.0.1, drainTimeoutMs: ${DRAIN_MS} }
routes:
  - name: pooled
    match: { pathPrefix: /pooled }
    upstream: ${upstream}
    auth: { type: none }
`;

/** An upstream that keeps idle sockets open for a minute, and counts the ones open now. */
async function keepAliveUpstream(): Promise<TestServer & { open: () => number }> {
  const upstream = await startEchoUpstream();
  upstream.server.keepAliveTimeout = 60_000;
  const sockets = new Set<Socket>();
  upstream.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return Object.assign(upstream, { open: () => sockets.size });
}

describe('upstream socket pools across a reload', () => {
  const cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of cleanup.reverse()) await close();
  });

  async function pooled(gw: TestGateway): Promise<void> {
    const response = await fetch(`${gw.url}/pooled/x`);
    assert.equal(response.status, 200);
    await response.arrayBuffer();
  }

  it('closes the idle sockets to an upstream that a reload no longer routes to, after listen.drainTimeoutMs', async () => {
    const [before, next] = [await keepAliveUpstream(), await keepAliveUpstream()];
    const gw = await startGateway(yaml(before.url));
    cleanup.push(
      () => before.close(),
      () => next.close(),
      () => gw.stop(),
    );
    await pooled(gw);
    assert.equal(before.open(), 1, 'the keep-alive socket to the first upstream is open');

    writeFileSync(gw.configFile, yaml(next.url));
    assert.equal((await gw.gateway.reload()).ok, true);
    await pooled(gw);
    assert.equal(next.received.length, 1, 'the reloaded route goes to the new upstream');
    assert.equal(before.open(), 1, 'the old pool waits while requests of the old config may still be in flight');
    await waitFor(() => before.open() === 0, 'the old pool to close after the drain time');
    assert.equal(next.open(), 1, 'the pool in use is untouched');
  });

  it('keeps the pool of an upstream that the reloaded config still routes to', async () => {
    const [upstream, dropped] = [await keepAliveUpstream(), await keepAliveUpstream()];
    // A second route whose upstream the reload drops: its pool closing says the drain time is over.
    const withDropped = `${yaml(upstream.url)}
  - name: dropped
    match: { pathPrefix: /dropped }
    upstream: ${dropped.url}
    auth: { type: none }
`;
    const gw = await startGateway(withDropped);
    cleanup.push(
      () => upstream.close(),
      () => dropped.close(),
      () => gw.stop(),
    );
    await pooled(gw);
    await (await fetch(`${gw.url}/dropped/x`)).arrayBuffer();
    assert.equal(dropped.open(), 1);
    writeFileSync(gw.configFile, `${yaml(upstream.url)}\n# touched\n`);
    assert.equal((await gw.gateway.reload()).ok, true);
    await waitFor(() => dropped.open() === 0, "the dropped upstream's pool to close after the drain time");
    assert.equal(upstream.open(), 1);
    await pooled(gw);
    assert.equal(upstream.open(), 1, 'the same socket serves the next request');
  });
});
