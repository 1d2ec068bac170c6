/**
 * The proxy's pure pieces on their own, below the listener the other core-* files drive: the
 * request-target parser (routing/target.ts), the upstream failure mapping (proxy/upstream-failure.ts)
 * and the replay policy (proxy/replay-policy.ts).
 */
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { Route } from '../src/config/types.js';
import { UPSTREAM_ERROR_REASONS } from '../src/errors/reasons.js';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { bodyPlan, unauthorizedOutcome, wantsReplay, type Attempt } from '../src/proxy/replay-policy.js';
import { HEAD_TIMEOUT_CODE, UNUSABLE_ANSWER_CODE } from '../src/proxy/upstream-call.js';
import { upstreamFailureError, upstreamFailureReason } from '../src/proxy/upstream-failure.js';
import { normalizePath } from '../src/routing/path.js';
import { parseTarget, TARGET_REFUSAL_DETAIL, TARGET_REFUSALS, type RequestTarget } from '../src/routing/target.js';

/** Path segments as callers and attackers spell them: names, dots in every encoding, empty ones. */
const segment = fc.oneof(
  fc.constantFrom('', '.', '..', '%2e', '%2E%2e', '.%2e', 'a', 'B', 'x.y', '..a', '%41', '~u'),
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,6}$/),
);
const originPath = fc.array(segment, { maxLength: 8 }).map((segments) => `/${segments.join('/')}`);
const query = fc.oneof(
  fc.constant(''),
  fc.stringMatching(/^[A-Za-z0-9=&/.%-]{0,12}$/).map((q) => `?${q}`),
);

function parsed(target: string, host?: string): RequestTarget {
  const result = parseTarget(target, host);
  if (typeof result === 'string') assert.fail(`${target} was refused: ${result}`);
  return result;
}

describe('request target (routing/target.ts)', () => {
  it('an origin-form path is routed only once normalised, never above the root, its query untouched', () => {
    fc.assert(
      fc.property(originPath, query, (path, q) => {
        const result = parseTarget(path + q, 'gw.example');
        if (result === 'ambiguous_path') return assert.equal(normalizePath(path), undefined);
        if (typeof result === 'string') assert.fail(`${path + q} was refused: ${result}`);
        assert.equal(result.path, normalizePath(path));
        assert.equal(result.query, q);
        // Never above the root: no dot segment survives, and a URL resolver sees the same path.
        assert.ok(!result.path.split('/').some((s) => /^(?:\.|%2e){1,2}$/i.test(s)), result.path);
        assert.equal(new URL(`http://upstream${result.path}`).pathname, result.path);
      }),
      { numRuns: 2_000 },
    );
  });

  it('an absolute-form target routes as its origin form would, with its own authority in place of Host', () => {
    fc.assert(
      fc.property(originPath, query, fc.constantFrom('Api.Example.COM', 'api.example.com:8443', '[::1]:8080'), (path, q, authority) => {
        const origin = parseTarget(path + q, 'host-header.example');
        const absolute = parseTarget(`http://${authority}${path}${q}`, 'host-header.example');
        if (typeof origin === 'string') return assert.equal(absolute, origin);
        assert.deepEqual(absolute, { ...origin, authority, host: hostOf(authority) });
      }),
      { numRuns: 500 },
    );
  });

  it('an absolute-form target without a path is the root, its query kept', () => {
    assert.deepEqual(parsed('HTTPS://Api.Example.com:8443?x=1', 'other'), {
      authority: 'Api.Example.com:8443',
      host: 'api.example.com',
      path: '/',
      query: '?x=1',
    });
    assert.deepEqual(parsed('http://api.example.com', undefined), {
      authority: 'api.example.com',
      host: 'api.example.com',
      path: '/',
      query: '',
    });
  });

  it('the Host header names the authority of an origin-form target', () => {
    assert.deepEqual(parsed('/a/./b/../c?q=/../x', 'GW.example:80'), {
      authority: 'GW.example:80',
      host: 'gw.example',
      path: '/a/c',
      query: '?q=/../x',
    });
    assert.deepEqual(parsed('/x', undefined), { authority: undefined, host: undefined, path: '/x', query: '' });
  });

  it('the asterisk and authority forms are refused as unsupported, a path above the root or ambiguous as such', () => {
    assert.equal(parseTarget('*', 'gw'), 'unsupported_form');
    assert.equal(parseTarget('api.example.com:443', 'gw'), 'unsupported_form');
    assert.equal(parseTarget('ftp://api.example.com/x', 'gw'), 'unsupported_form');
    assert.equal(parseTarget('/a/../../etc/passwd', 'gw'), 'ambiguous_path');
    assert.equal(parseTarget('/a%2fb', 'gw'), 'ambiguous_path');
    assert.equal(parseTarget('http://api.example.com#frag', 'gw'), 'ambiguous_path');
    for (const refusal of TARGET_REFUSALS) assert.ok(TARGET_REFUSAL_DETAIL[refusal].length > 0);
  });
});

function hostOf(authority: string): string {
  return (authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.split(':')[0]!).toLowerCase();
}

describe('upstream failure mapping (proxy/upstream-failure.ts)', () => {
  it('a time-out, an unreachable upstream and a cut connection are told apart by their code', () => {
    assert.equal(upstreamFailureReason('UND_ERR_CONNECT_TIMEOUT'), 'timeout');
    assert.equal(upstreamFailureReason(HEAD_TIMEOUT_CODE), 'timeout');
    for (const code of [
      'ECONNREFUSED',
      'ENOTFOUND',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'EAI_AGAIN',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
    ])
      assert.equal(upstreamFailureReason(code), 'unavailable', code);
    for (const code of ['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', '']) assert.equal(upstreamFailureReason(code), 'reset', code);
  });

  it('each reason of the metric has its answer: 504 for a time-out, 502 with why otherwise, no upstream text', () => {
    const answers = UPSTREAM_ERROR_REASONS.map((reason) => upstreamFailureError(reason, 'ECONNREFUSED'));
    assert.deepEqual(
      answers.map((error) => [error.code, error.statusCode]),
      UPSTREAM_ERROR_REASONS.map((reason) => (reason === 'timeout' ? ['UPSTREAM_TIMEOUT', 504] : ['UPSTREAM_UNAVAILABLE', 502])),
    );
    assert.equal(upstreamFailureError('unavailable', 'ECONNREFUSED').detail, 'cannot reach the upstream (ECONNREFUSED)');
    assert.equal(upstreamFailureError('reset', 'ECONNRESET').detail, 'the upstream reset the connection');
    assert.equal(upstreamFailureError('reset', UNUSABLE_ANSWER_CODE).detail, 'the upstream sent an answer that cannot be passed on');
  });
});

async function routeWith(replay: Record<string, unknown>): Promise<Route> {
  const config = await buildConfigTextOnly(
    stringify({ routes: [{ name: 'r', match: { pathPrefix: '/' }, upstream: 'http://u.example', auth: { type: 'none' }, ...replay }] }),
    'pieces.yaml',
  );
  return config.routes[0]!;
}

function request(headers: Record<string, string>): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.headers = headers;
  return req;
}

const first: Attempt = { replayed: false, replayable: true, dpopNonce: undefined };

describe('replay policy (proxy/replay-policy.ts)', () => {
  it('replayOn401 invalid_token replays only a challenge that blames the token, Bearer or DPoP', async () => {
    const route = await routeWith({});
    assert.equal(wantsReplay(route, { 'www-authenticate': 'Bearer realm="x", error="invalid_token"' }), true);
    assert.equal(wantsReplay(route, { 'www-authenticate': 'DPoP algs="ES256", error="invalid_token"' }), true);
    assert.equal(wantsReplay(route, { 'www-authenticate': 'Bearer error="insufficient_scope"' }), false);
    assert.equal(wantsReplay(route, { 'www-authenticate': 'Basic realm="error=invalid_token"' }), false);
    assert.equal(wantsReplay(route, {}), false);
    assert.equal(wantsReplay(await routeWith({ replayOn401: 'any' }), {}), true);
    assert.equal(wantsReplay(await routeWith({ replayOn401: 'off' }), { 'www-authenticate': 'Bearer error="invalid_token"' }), false);
  });

  it('a 401 is replayed once; a streamed body only invalidates the token; a refused replay is an auth failure', async () => {
    const route = await routeWith({ replayOn401: 'any' });
    assert.equal(unauthorizedOutcome(route, {}, first), 'replay');
    assert.equal(unauthorizedOutcome(route, {}, { ...first, replayable: false }), 'invalidate');
    assert.equal(unauthorizedOutcome(route, {}, { ...first, replayed: true }), 'refused_again');
    assert.equal(unauthorizedOutcome(await routeWith({}), {}, first), 'pass');
  });

  it('a body is buffered for a replay only up to replayBodyLimit, and never when the route cannot replay', async () => {
    const route = await routeWith({ replayBodyLimit: 10 });
    assert.equal(bodyPlan(route, true, request({})), 'replayable');
    assert.equal(bodyPlan(route, true, request({ 'content-length': '0' })), 'replayable');
    assert.equal(bodyPlan(route, true, request({ 'content-length': '10' })), 'buffer');
    assert.equal(bodyPlan(route, true, request({ 'content-length': '11' })), 'stream');
    assert.equal(bodyPlan(route, true, request({ 'transfer-encoding': 'chunked' })), 'stream');
    assert.equal(bodyPlan(route, false, request({ 'content-length': '1' })), 'stream');
    assert.equal(bodyPlan(await routeWith({ replayOn401: 'off' }), true, request({})), 'stream');
  });
});
