/**
 * Span URLs keep query names and lose every value (a value can be a token: RFC 6750 §2.3). A
 * property test: whatever path and query a caller sends, no value reaches url.query or url.full.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { REDACTED, redactAbsoluteUrl, redactQuery, redactUrl } from '../src/tracing/redact.js';

/** Query text: names and values from any characters a request target may carry, except the separators. */
const part = fc.string({ unit: fc.constantFrom(..."abcXYZ019-._~%+;,:@!$'()*/?".split('')), maxLength: 12 });
/** A value long and distinct enough that finding it in the output means it leaked (not a chance substring). */
const secretValue = fc
  .string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: 16, maxLength: 24 })
  .map((v) => `S3CR3T${v}`);

describe('URL redaction for spans', () => {
  it('keeps names, bare names and separators, and replaces each value', () => {
    assert.equal(redactQuery('a=1&b&c=x=y&&d='), `a=${REDACTED}&b&c=${REDACTED}&&d=${REDACTED}`);
    assert.equal(redactQuery(''), '');
    assert.equal(redactUrl('http://up:80', '/p/a?t=abc'), `http://up:80/p/a?t=${REDACTED}`);
    assert.equal(redactUrl('http://up:80', '/p/a'), 'http://up:80/p/a');
    assert.equal(redactAbsoluteUrl(new URL('https://user:pw@auth.example/token?x=1#frag')), `https://auth.example/token?x=${REDACTED}`);
  });

  it('never lets a query value through, whatever the path and the names around it', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ maxLength: 8 }).map((s) => `/${encodeURIComponent(s)}`),
          { maxLength: 4 },
        ),
        fc.array(fc.tuple(part, fc.option(secretValue, { nil: undefined })), { minLength: 1, maxLength: 6 }),
        (segments, pairs) => {
          const query = pairs
            .map(([name, value]) =>
              value === undefined
                ? name.replaceAll('=', '').replaceAll('&', '')
                : `${name.replaceAll('=', '').replaceAll('&', '')}=${value}`,
            )
            .join('&');
          const path = segments.join('') || '/';
          const redacted = redactQuery(query);
          const full = redactUrl('http://upstream:8080', `${path}?${query}`);
          for (const [, value] of pairs) {
            if (value === undefined) continue;
            assert.equal(redacted.includes(value), false, `${value} leaked into ${redacted}`);
            assert.equal(full.includes(value), false, `${value} leaked into ${full}`);
          }
          // Same number of parameters, each name where it was.
          assert.deepEqual(
            redacted.split('&').map((p) => p.split('=')[0]),
            query.split('&').map((p) => p.split('=')[0]),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never lets anything after an = through, for arbitrary query text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (query) => {
        for (const pair of redactQuery(query).split('&')) {
          const equals = pair.indexOf('=');
          if (equals !== -1) assert.equal(pair.slice(equals + 1), REDACTED);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
