/**
 * Header hygiene (src/proxy/headers.ts) one rule per test, so that each line of it has a test that
 * fails when it changes (test/README.md, "Mutation testing"): every hop-by-hop and replaced name on
 * its own, Connection lists, repeated framing, trailers, request ids, the admin cookies and the
 * X-Forwarded-* the gateway owns. Pure functions, no gateway: each mutant costs Stryker a second.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { acceptRequestId, callerResponseHeaders, callerTrailers, upstreamRequestHeaders, type Forwarding } from '../src/proxy/headers.js';

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
const REPLACED = ['host', 'authorization', 'dpop', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'expect'];

const pairs = (list: readonly string[]): Array<[string, string]> =>
  list.flatMap((_, i) => (i % 2 === 0 ? [[list[i]!, list[i + 1]!] as [string, string]] : []));
const names = (list: readonly string[]) => pairs(list).map(([name]) => name.toLowerCase());

describe('callerResponseHeaders', () => {
  const answer = (raw: string[]) => pairs(callerResponseHeaders(raw, 'our-id'));

  it('drops each hop-by-hop header, whatever its case, and keeps the one after it', () => {
    for (const name of HOP_BY_HOP) {
      assert.deepEqual(
        answer([name.toUpperCase(), 'v', 'X-After', 'kept']),
        [
          ['X-After', 'kept'],
          ['x-request-id', 'our-id'],
        ],
        name,
      );
    }
  });

  it("replaces the upstream's X-Request-Id with ours, added last", () => {
    assert.deepEqual(answer(['X-Request-Id', 'theirs', 'A', '1']), [
      ['A', '1'],
      ['x-request-id', 'our-id'],
    ]);
  });

  it('drops the headers Connection names, trimmed and in any case, and keeps the rest', () => {
    assert.deepEqual(answer(['X-One', '1', 'Connection', 'keep-alive,  X-ONE ,x-two', 'X-Two', '2', 'X-Three', '3']), [
      ['X-Three', '3'],
      ['x-request-id', 'our-id'],
    ]);
  });

  it('reads keep-alive or close in a longer Connection list as one option among others, however it is spaced', () => {
    for (const connection of ['X-One,close', 'close,X-One', 'x-one, keep-alive', 'keep-alive ,x-one']) {
      assert.deepEqual(
        answer(['Connection', connection, 'X-One', '1', 'X-Two', '2']),
        [
          ['X-Two', '2'],
          ['x-request-id', 'our-id'],
        ],
        connection,
      );
    }
  });

  it('honours every Connection line, not only the last', () => {
    assert.deepEqual(answer(['Connection', 'x-one', 'Connection', 'x-two', 'X-One', '1', 'X-Two', '2', 'X-Three', '3']), [
      ['X-Three', '3'],
      ['x-request-id', 'our-id'],
    ]);
  });

  it('takes names only from Connection lines: another ten-letter header names nothing', () => {
    assert.deepEqual(answer(['X-Ten-Char', 'x-kept', 'X-Kept', 'yes']), [
      ['X-Ten-Char', 'x-kept'],
      ['X-Kept', 'yes'],
      ['x-request-id', 'our-id'],
    ]);
  });

  it('passes the first Content-Length on, drops a repeat, and keeps the lines after it', () => {
    assert.deepEqual(answer(['Content-Length', '2', 'X-A', 'a', 'content-length', '2', 'X-B', 'b']), [
      ['Content-Length', '2'],
      ['X-A', 'a'],
      ['X-B', 'b'],
      ['x-request-id', 'our-id'],
    ]);
  });

  it('keeps every end-to-end line in order, with its case and repeats, for any such list', () => {
    const name = fc.constantFrom('Set-Cookie', 'Vary', 'content-type', 'X-Custom', 'ETag');
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.string({ maxLength: 8 })), { maxLength: 10 }), (lines) => {
        const raw = lines.flat();
        assert.deepEqual(pairs(callerResponseHeaders(raw, 'id')), [...lines, ['x-request-id', 'id']]);
      }),
      { numRuns: 100 },
    );
  });
});

describe('callerTrailers', () => {
  // The upstream client's parser hands over each line as a Latin-1 string, one character per byte.
  const latin1 = (...values: string[]) => values;

  it('passes each trailer on as it came, name case and latin1 bytes kept', () => {
    assert.deepEqual(callerTrailers(latin1('X-Checksum', 'caf\u00e9', 'server-timing', 'db;dur=5')), [
      ['X-Checksum', 'caf\u00e9'],
      ['server-timing', 'db;dur=5'],
    ]);
  });

  it('drops each hop-by-hop trailer and a Content-Length, whatever their case', () => {
    for (const name of [...HOP_BY_HOP, 'content-length']) {
      assert.deepEqual(callerTrailers(latin1(name.toUpperCase(), 'v', 'X-After', 'kept')), [['X-After', 'kept']], name);
    }
  });

  it('drops a name that comes without a value', () => {
    assert.deepEqual(callerTrailers(latin1('X-A', '1', 'X-Dangling')), [['X-A', '1']]);
    assert.deepEqual(callerTrailers([]), []);
  });
});

describe('acceptRequestId', () => {
  it('accepts letters, digits and ._:@/+=- up to 128 characters', () => {
    for (const id of ['AZaz09._:@/+=-', 'a', 'a'.repeat(128), 'Zz9']) assert.equal(acceptRequestId(id), id, id);
  });

  it('refuses an empty, a too long, a list or a missing value', () => {
    for (const value of ['', 'a'.repeat(129), ['abc'], undefined]) assert.equal(acceptRequestId(value), undefined, String(value));
  });

  it('refuses any other character anywhere in the id', () => {
    for (const bad of [' ', '\n', '<', '"', ',', ';', '%', '\u00e9', '*', '!', '[', '`', '{', '~', '#', '?', '\\'])
      for (const id of [`${bad}abc`, `ab${bad}c`, `abc${bad}`]) assert.equal(acceptRequestId(id), undefined, JSON.stringify(id));
  });
});

const forwarding = (overrides: Partial<Forwarding> = {}): Forwarding => ({
  upstreamHost: 'upstream.internal:8443',
  requestId: 'req-1',
  remoteAddress: '10.0.0.7',
  proto: 'https',
  host: 'gateway.local',
  accessHeaders: new Set(['x-api-key']),
  authorization: 'Bearer fresh',
  bodyless: false,
  ...overrides,
});

/** The request as Node has it: the joined object and the raw lines. */
function forward(lines: Array<[string, string]>, fw: Forwarding = forwarding()): Array<[string, string]> {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of lines) {
    const lower = name.toLowerCase();
    const previous = headers[lower];
    headers[lower] = previous === undefined ? value : `${String(previous)}, ${value}`;
  }
  return pairs(upstreamRequestHeaders(headers, lines.flat(), fw));
}
/** The caller's lines that reach the upstream, before the ones the gateway adds. */
const passed = (lines: Array<[string, string]>, fw?: Forwarding) => {
  const out = forward(lines, fw);
  return out.slice(
    0,
    out.findIndex(([name]) => name === 'host'),
  );
};

describe('upstreamRequestHeaders', () => {
  it("drops each header the gateway replaces and each hop-by-hop one, whatever the caller's case", () => {
    for (const name of [...REPLACED, ...HOP_BY_HOP]) {
      assert.deepEqual(
        passed([
          [name.toUpperCase(), 'caller'],
          ['X-After', 'kept'],
        ]),
        [['X-After', 'kept']],
        name,
      );
    }
  });

  it("drops the caller's access key, in any case", () => {
    assert.deepEqual(
      passed([
        ['X-Api-Key', 'k'],
        ['Accept', '*/*'],
      ]),
      [['Accept', '*/*']],
    );
  });

  it('drops the headers the caller names in Connection, trimmed and in any case', () => {
    assert.deepEqual(
      passed([
        ['Connection', 'keep-alive , X-PRIVATE,x-other'],
        ['X-Private', 'p'],
        ['X-Other', 'o'],
        ['X-Kept', 'k'],
      ]),
      [['X-Kept', 'k']],
    );
  });

  it('keeps a body-carrying request its Content-Length, even when Connection names it', () => {
    assert.deepEqual(
      passed([
        ['Connection', 'content-length'],
        ['Content-Length', '5'],
      ]),
      [['Content-Length', '5']],
    );
  });

  it('drops the Content-Length of a request without a body, and nothing else for it', () => {
    assert.deepEqual(
      passed(
        [
          ['Content-Length', '0'],
          ['X-Kept', 'k'],
        ],
        forwarding({ bodyless: true }),
      ),
      [['X-Kept', 'k']],
    );
  });

  it('adds, after the caller lines and in this order, Host, X-Forwarded-For, -Proto, -Host, X-Request-Id and Authorization', () => {
    assert.deepEqual(forward([['Accept', '*/*']]), [
      ['Accept', '*/*'],
      ['host', 'upstream.internal:8443'],
      ['x-forwarded-for', '10.0.0.7'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-host', 'gateway.local'],
      ['x-request-id', 'req-1'],
      ['authorization', 'Bearer fresh'],
    ]);
  });

  it("appends the caller's address to the X-Forwarded-For it sent", () => {
    const out = forward([['X-Forwarded-For', '192.0.2.1, 192.0.2.2']]);
    assert.deepEqual(
      out.filter(([name]) => name === 'x-forwarded-for'),
      [['x-forwarded-for', '192.0.2.1, 192.0.2.2, 10.0.0.7']],
    );
  });

  it("passes the caller's X-Forwarded-For on alone when the address is unknown, and sends none when neither is", () => {
    const unknown = forwarding({ remoteAddress: undefined });
    assert.deepEqual(
      forward([['X-Forwarded-For', '192.0.2.1']], unknown).filter(([name]) => name === 'x-forwarded-for'),
      [['x-forwarded-for', '192.0.2.1']],
    );
    assert.deepEqual(
      names(upstreamRequestHeaders({}, [], unknown)).filter((name) => name === 'x-forwarded-for'),
      [],
    );
  });

  it('sends no X-Forwarded-Host when the caller sent no Host, and no Authorization without a token', () => {
    const out = names(upstreamRequestHeaders({}, [], forwarding({ host: undefined, authorization: undefined })));
    assert.deepEqual(out, ['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-request-id']);
  });

  it('leaves a Cookie line without an admin cookie exactly as it was sent', () => {
    assert.deepEqual(
      passed([
        ['Cookie', 'a=1;b=2 ;  c=3'],
        ['Cookie', 'my_tokengate=1'],
      ]),
      [
        ['Cookie', 'a=1;b=2 ;  c=3'],
        ['Cookie', 'my_tokengate=1'],
      ],
    );
  });

  it('removes each admin cookie, with or without a value and with spaces around its name, and tidies the rest', () => {
    const line = ' a=1;;tokengate_session=s; tokengate_login ;__Host-tokengate_session =h;__Host-tokengate_login=l ; b=x=y ;';
    assert.deepEqual(passed([['Cookie', line]]), [['Cookie', 'a=1; b=x=y']]);
  });

  it('keeps cookies whose names only look like the admin ones', () => {
    const line = 'tokengate_session_x=1; Tokengate_Session=2; xtokengate_login=3; tokengate_=4';
    assert.deepEqual(passed([['Cookie', line]]), [['Cookie', line]]);
  });

  it('takes admin cookie names out of Cookie lines only: another header with the same text goes on as sent', () => {
    const lines: Array<[string, string]> = [
      ['X-Note', 'a=1;tokengate_session=s'],
      ['X-Only', 'tokengate_login=l'],
      ['X-Empty', ''],
    ];
    assert.deepEqual(passed(lines), lines);
  });

  it('drops a Cookie line that held only admin cookies, and keeps the lines around it', () => {
    assert.deepEqual(
      passed([
        ['X-A', '1'],
        ['Cookie', 'tokengate_session=s; tokengate_login=l'],
        ['X-B', '2'],
      ]),
      [
        ['X-A', '1'],
        ['X-B', '2'],
      ],
    );
  });
});
