/**
 * Property: whatever bytes a token endpoint or an upstream sends (any status line, header set,
 * body, framing, and an early close, a reset or silence after it), every caller is answered
 * within its budget and the process lives. The peer is a raw TCP server replaying the generated
 * answer; the token side runs a fresh TokenProvider per case (no circuit or rejection memory
 * carried over), the upstream side a live in-process gateway.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { buildConfigTextOnly } from '../src/runtime/build.js';
import { GatewayError } from '../src/errors/gateway.js';
import { TokenProvider } from '../src/tokens/provider.js';
import { tokenKey } from '../src/tokens/types.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { startHeadServer, type HeadServer } from './support/hostile.js';

const TOKEN = { connectMs: 200, totalMs: 300, budgetMs: 600, maxAttempts: 2 };
const RESPONSE_MS = 300;
const SLACK_MS = 1_000;

type Ending = 'end' | 'silence' | 'reset' | 'cut';

interface PeerAnswer {
  bytes: string;
  ending: Ending;
}

const statusLine = fc
  .tuple(
    fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/1.1x', 'http/1.1', ''),
    fc.oneof(
      fc.constantFrom(0, 99, 100, 101, 102, 103, 200, 201, 204, 302, 304, 400, 401, 429, 500, 503, 999),
      fc.integer({ min: 0, max: 999 }),
    ),
    fc.constantFrom('OK', 'Switching Protocols', '', 'X\u0000Y', 'é'),
  )
  .map(([version, status, reason]) => `${version} ${String(status).padStart(3, '0')} ${reason}\r\n`);

const header = fc.oneof(
  fc.constantFrom(
    'Content-Type: application/json',
    'Connection: Upgrade',
    'Connection: close',
    'Upgrade: websocket',
    'Transfer-Encoding: chunked',
    'Transfer-Encoding: gzip, chunked',
    'Transfer-Encoding: identity',
    'Retry-After: 1',
    'Retry-After: 99999',
    'Location: http://127.0.0.1:1/',
    'Content-Length: 0',
    'Content-Length: 5',
    'Content-Length: -1',
    'Content-Length: 99999999999999999999',
    `X-Big: ${'b'.repeat(20 * 1024)}`,
    'Bad Header Name: x',
    'X-Folded: a\r\n b',
  ),
  fc.integer({ min: 0, max: 400 }).map((n) => `Content-Length: ${n}`),
  fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), fc.string({ maxLength: 40 })).map(([name, value]) => `${name}: ${value}`),
);

const body = fc.oneof(
  fc.constant(JSON.stringify({ access_token: 'tok-prop', token_type: 'Bearer', expires_in: 60 })),
  fc.constant(JSON.stringify({ error: 'invalid_client' })),
  fc.constant('5\r\nhello\r\n0\r\n\r\n'),
  fc.constant('zz\r\nnot a chunk\r\n'),
  fc.string({ maxLength: 200 }),
  fc.constant(''),
);

const peerAnswer: fc.Arbitrary<PeerAnswer> = fc.record({
  bytes: fc
    .tuple(statusLine, fc.array(header, { maxLength: 6 }), body)
    .map(([line, headers, text]) => `${line}${headers.map((h) => `${h}\r\n`).join('')}\r\n${text}`),
  ending: fc.constantFrom<Ending>('end', 'silence', 'reset', 'cut'),
});

/** A raw peer that replays `current` to every request, then ends as told. */
async function startReplayPeer(): Promise<HeadServer & { set(answer: PeerAnswer): void }> {
  let current: PeerAnswer = { bytes: 'HTTP/1.1 204 No Content\r\n\r\n', ending: 'end' };
  const server = await startHeadServer((socket) => {
    const { bytes, ending } = current;
    if (ending === 'cut') return void socket.end(bytes.slice(0, Math.max(1, Math.floor(bytes.length / 2))));
    socket.write(bytes, 'latin1');
    if (ending === 'end') socket.end();
    else if (ending === 'reset') setImmediate(() => socket.resetAndDestroy());
  });
  return { ...server, set: (answer) => (current = answer) };
}

/**
 * Resolves with the ms until response headers, an error or a close: whichever ends the caller's
 * wait. Gives up itself at `limitMs` (reported as such), so a counterexample is shown, not a hang.
 */
function timeToAnswer(url: string, limitMs = 10_000): Promise<{ ms: number; status: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const limit = setTimeout(() => {
      req.destroy();
      resolve({ ms: Number.POSITIVE_INFINITY, status: -1 });
    }, limitMs);
    const req = http.request(url, { agent: false }, (res) => {
      clearTimeout(limit);
      resolve({ ms: performance.now() - started, status: res.statusCode ?? 0 });
      res.destroy();
    });
    req.on('error', () => {
      clearTimeout(limit);
      resolve({ ms: performance.now() - started, status: 0 });
    });
    req.end();
  });
}

describe('property: any token-endpoint or upstream answer ends every wait within its budget', () => {
  let peer: Awaited<ReturnType<typeof startReplayPeer>>;
  let gw: TestGateway;

  before(async () => {
    peer = await startReplayPeer();
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
logging: { accessLog: off }
routes:
  - name: prop
    match: { pathPrefix: /prop }
    upstream: http://127.0.0.1:${peer.port}
    auth: { type: none }
    timeouts: { connectMs: 200, responseMs: ${RESPONSE_MS} }
`);
  });

  after(async () => {
    await gw?.stop();
    await peer?.close();
  });

  it('token endpoint: the caller gets a token or a coded error within the budget', { timeout: 60_000 }, async () => {
    const config = await buildConfigTextOnly(
      `
secrets: { s: { value: prop-secret } }
connections:
  c:
    clientId: prop
    tokenUrl: http://127.0.0.1:${peer.port}/token
    clientSecret: { secret: s }
    timeouts: { connectMs: ${TOKEN.connectMs}, totalMs: ${TOKEN.totalMs} }
    retry: { maxAttempts: ${TOKEN.maxAttempts}, budgetMs: ${TOKEN.budgetMs}, retryAfterCapMs: 200 }
`,
      'property.yaml',
    );
    const observer = { tokenRequest: () => undefined, tokenFailure: () => undefined };
    await fc.assert(
      fc.asyncProperty(peerAnswer, async (answer) => {
        peer.set(answer);
        const provider = new TokenProvider(config.connections.values(), observer);
        const started = performance.now();
        try {
          const outcome = await provider.get(tokenKey('c', {})).then(
            (token) => token.accessToken,
            (error: unknown) => (error instanceof GatewayError ? error.code : `not a GatewayError: ${String(error)}`),
          );
          const ms = performance.now() - started;
          assert.ok(ms < TOKEN.budgetMs + SLACK_MS, `answered after ${Math.round(ms)} ms`);
          assert.match(outcome, /^(tok-prop|TOKEN_[A-Z_]+)$/);
        } finally {
          provider.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('upstream: the caller gets a status line or a closed connection within responseMs', { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(peerAnswer, async (answer) => {
        peer.set(answer);
        const { ms } = await timeToAnswer(`${gw.url}/prop/x`, RESPONSE_MS + SLACK_MS);
        assert.ok(ms < RESPONSE_MS + SLACK_MS, `answered after ${Math.round(ms)} ms`);
      }),
      { numRuns: 100 },
    );
    // The gateway lives and still serves.
    assert.equal((await timeToAnswer(`${gw.admin}/healthz`)).status, 200);
  });
});
