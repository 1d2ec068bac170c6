/**
 * `${VAR}` substitution (config/substitute.ts) rule by rule, on the stage itself: which values take
 * a number's or a boolean's type, what passes through untouched, which key is left alone, and how
 * one unset variable used in many places is reported once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { substituteVariables } from '../src/config/substitute.js';

interface Reported {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

function substitute(value: unknown, env: NodeJS.ProcessEnv = {}) {
  const reported: Reported[] = [];
  const result = substituteVariables(value, env, (path, message) => reported.push({ path, message }));
  return { ...result, reported };
}

const one = (text: string, env: NodeJS.ProcessEnv) => (substitute({ v: text }, env).value as { v: unknown }).v;

describe('a value that is one variable takes the type it reads as', () => {
  it('integers, negative numbers and decimals of any length become numbers', () => {
    assert.equal(one('${N}', { N: '8080' }), 8080);
    assert.equal(one('${N}', { N: '-3' }), -3);
    assert.equal(one('${N}', { N: '1.5' }), 1.5);
    assert.equal(one('${N}', { N: '1.25' }), 1.25);
  });

  it('text that only starts or ends like a number stays text', () => {
    assert.equal(one('${N}', { N: '12abc' }), '12abc');
    assert.equal(one('${N}', { N: 'abc12' }), 'abc12');
    assert.equal(one('${N}', { N: '1.x' }), '1.x');
  });

  it('true and false become booleans, other words stay text', () => {
    assert.equal(one('${B}', { B: 'true' }), true);
    assert.equal(one('${B}', { B: 'false' }), false);
    assert.equal(one('${B:-false}', {}), false);
    assert.equal(one('${B}', { B: 'yes' }), 'yes');
    assert.equal(one('${B}', { B: 'True' }), 'True');
  });

  it('a value with text around the variable stays text, whatever it reads as', () => {
    assert.equal(one('1${N}', { N: '2' }), '12');
    assert.equal(one('${N}1', { N: '2' }), '21');
    assert.equal(one('${A}${B}', { A: 'tr', B: 'ue' }), 'true');
    assert.equal(one('x${B}', { B: 'false' }), 'xfalse');
  });

  it('a value with no variable is never converted', () => {
    assert.equal(one('true', {}), 'true');
    assert.equal(one('42', {}), '42');
  });

  it('a number read back as text is the text it came from (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e9, max: 1e9 }), fc.nat({ max: 9999 }), (whole, fraction) => {
        const text = fraction === 0 ? String(whole) : `${whole}.${fraction}`;
        assert.equal(one('${N}', { N: text }), Number(text));
      }),
    );
  });
});

describe('what the walk leaves alone', () => {
  it('numbers, booleans and null pass through, in objects and arrays', () => {
    const input = { n: 3, b: false, z: null, list: [1, null, 'x'], nested: { n: 0 } };
    assert.deepEqual(substitute(input).value, input);
  });

  it('the top-level secrets section only: a key named secrets deeper down is substituted', () => {
    const { value } = substitute({ secrets: { s: { value: '${X}' } }, other: { secrets: '${X}' } }, { X: 'v' });
    assert.deepEqual(value, { secrets: { s: { value: '${X}' } }, other: { secrets: 'v' } });
  });
});

describe('escapes and empty values', () => {
  it('$${VAR} is the literal text ${VAR}, even when VAR is set', () => {
    assert.equal(one('$${X}', { X: 'v' }), '${X}');
    assert.equal(one('a $${X} b ${X}', { X: 'v' }), 'a ${X} b v');
  });

  it('an empty variable takes the default, and without one is reported as empty', () => {
    assert.equal(one('${E:-fallback}', { E: '' }), 'fallback');
    const { reported } = substitute({ a: '${E}' }, { E: '' });
    assert.deepEqual(reported, [{ path: ['a'], message: 'environment variable E is empty (write ${E:-default} for a default)' }]);
  });
});

describe('an unset variable', () => {
  it('returns exactly the key paths that kept it', () => {
    const { unresolved } = substitute({ a: '${MISSING}', b: 'set ${SET}', c: ['${MISSING}'] }, { SET: '1' });
    assert.deepEqual(unresolved, [['a'], ['c', 0]]);
    assert.deepEqual(substitute({ a: '${SET}' }, { SET: '1' }).unresolved, []);
  });

  it('used twice in one value is one place', () => {
    const { reported } = substitute({ a: '${M}-${M}' });
    assert.deepEqual(reported, [{ path: ['a'], message: 'environment variable M is not set (write ${M:-default} for a default)' }]);
  });

  it('names up to five other places, with no count when there are no more', () => {
    const { reported } = substitute({ list: Array.from({ length: 6 }, () => '${M}') });
    assert.equal(reported.length, 1);
    assert.deepEqual(reported[0]!.path, ['list', 0]);
    assert.match(reported[0]!.message, /; also used at list\[1\], list\[2\], list\[3\], list\[4\], list\[5\]$/);
  });

  it('counts the places past five', () => {
    const { reported } = substitute({ list: Array.from({ length: 8 }, () => '${M}') });
    assert.match(reported[0]!.message, /; also used at list\[1\], list\[2\], list\[3\], list\[4\], list\[5\] and 2 more$/);
  });
});
