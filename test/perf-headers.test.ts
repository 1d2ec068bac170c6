/**
 * The hot-path forms of header hygiene (RFC 9110 §7.6.1) drop exactly what the slow forms did:
 * the copy made for responses, and the fast path for the usual `Connection: keep-alive`.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { dropHopByHop, endToEndHeaders } from '../src/proxy/headers.js';

const upstreamAnswer = (): IncomingHttpHeaders => ({
  'content-type': 'application/json',
  'content-length': '1024',
  'set-cookie': ['a=1', 'b=2'],
  connection: 'keep-alive, X-Hop',
  'keep-alive': 'timeout=5',
  'x-hop': 'for this hop only',
  'transfer-encoding': 'chunked',
  'x-end-to-end': 'kept',
});

test('endToEndHeaders copies a response without hop-by-hop headers or those named in Connection', () => {
  const original = upstreamAnswer();
  assert.deepEqual(endToEndHeaders(original), {
    'content-type': 'application/json',
    'content-length': '1024',
    'set-cookie': ['a=1', 'b=2'],
    'x-end-to-end': 'kept',
  });
  assert.deepEqual(original, upstreamAnswer(), 'the upstream response is left as it was');
});

test('endToEndHeaders with the usual Connection: keep-alive drops only the fixed hop-by-hop set', () => {
  assert.deepEqual(endToEndHeaders({ connection: 'Keep-Alive', 'keep-alive': 'timeout=5', 'x-keep': '1' }), { 'x-keep': '1' });
});

test('dropHopByHop still removes headers named in Connection, and nothing else', () => {
  const headers = upstreamAnswer();
  dropHopByHop(headers);
  assert.deepEqual(headers, { 'content-type': 'application/json', 'content-length': '1024', 'set-cookie': ['a=1', 'b=2'], 'x-end-to-end': 'kept' });
  const plain: IncomingHttpHeaders = { connection: 'close', host: 'upstream' };
  dropHopByHop(plain);
  assert.deepEqual(plain, { host: 'upstream' });
});
