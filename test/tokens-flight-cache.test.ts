/**
 * The in-flight map and the in-process token cache (tokens/single-flight.ts, tokens/cache.ts),
 * pinned one behaviour at a time: which entry a settling call removes, which keys are under way,
 * how long a token is kept, which tokens a drop removes, and the soonest expiry per connection.
 * Time is node:test's mocked Date, which node-cache reads for its TTLs: no sleeps.
 */
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import fc from 'fast-check';
import { connectionOf, LocalTokenCache } from '../src/tokens/cache.js';
import type { CachedToken } from '../src/tokens/types.js';
import { SingleFlight } from '../src/tokens/single-flight.js';

const NOW = 1_700_000_000_000;

function token(accessToken: string, usableInMs: number, expiresInMs = usableInMs + 30_000): CachedToken {
  return Object.freeze({
    accessToken,
    scope: undefined,
    obtainedAt: NOW,
    expiresAt: NOW + expiresInMs,
    usableUntil: NOW + usableInMs,
    refreshAt: NOW + usableInMs / 2,
  });
}

/** A promise with its resolve function, to settle a flight when the test says so. */
function pending<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('single flight: entries', () => {
  it('lists the keys with a call under way, and no others', async () => {
    const flights = new SingleFlight<string>();
    const a = pending<string>();
    const b = pending<string>();
    const done = flights.run('a', () => a.promise);
    void flights.run('b', () => b.promise);
    assert.deepEqual([...flights.keys()].sort(), ['a', 'b']);
    a.resolve('A');
    assert.equal(await done, 'A');
    assert.deepEqual([...flights.keys()], ['b']);
    b.resolve('B');
  });

  it('an entry is removed only by its own call settling, not by a call started inside it', async () => {
    const flights = new SingleFlight<string>();
    const outer = pending<string>();
    let inner: Promise<string> | undefined;
    const running = flights.run('k', () => {
      // Re-entrant: the outer call is not in the map yet, so this starts (and quickly ends) a call of its own.
      inner = flights.run('k', () => Promise.resolve('inner'));
      return outer.promise;
    });
    assert.equal(await inner, 'inner');
    await nextTurn();
    assert.equal(flights.has('k'), true, 'the outer call is still under way');
    assert.equal(
      flights.run('k', () => Promise.resolve('third')),
      running,
      'a later caller joins the outer call',
    );
    outer.resolve('outer');
    assert.equal(await running, 'outer');
    assert.equal(flights.has('k'), false);
  });
});

describe('connectionOf', () => {
  it('is the part of a token key id before the NUL', () => {
    assert.equal(connectionOf('billing\u0000scope=read'), 'billing');
    assert.equal(connectionOf('a\u0000'), 'a');
  });

  it('never reaches into the params (property)', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes('\u0000')),
        fc.string(),
        (connection, params) => {
          assert.equal(connectionOf(`${connection}\u0000${params}`), connection);
        },
      ),
    );
  });
});

describe('local token cache', () => {
  let cache: LocalTokenCache;
  beforeEach(() => {
    mock.timers.enable({ apis: ['Date'], now: NOW });
    cache = new LocalTokenCache();
  });
  afterEach(() => {
    cache.close();
    mock.timers.reset();
  });

  it('hands back the very token it was given (tokens are frozen; no copies)', () => {
    const t = token('at', 60_000);
    cache.set('c\u0000', t);
    assert.equal(cache.get('c\u0000'), t);
  });

  it('keeps a token until its usable end, rounded up to the second, and not after', () => {
    cache.set('c\u0000', token('at', 1_500));
    mock.timers.tick(2_000);
    assert.equal(cache.get('c\u0000')?.accessToken, 'at', 'kept for the whole 2 s the 1.5 s round up to');
    mock.timers.tick(1);
    assert.equal(cache.get('c\u0000'), undefined);
  });

  it('counts the usable life from the `now` it is given', () => {
    cache.set('c\u0000', token('at', 10_000), NOW + 8_000);
    mock.timers.tick(2_001);
    assert.equal(cache.get('c\u0000'), undefined, 'two seconds were left at that now');
  });

  it('does not keep a token already at or past its usable end, nor one with no finite end', () => {
    cache.set('now', token('at', 0));
    cache.set('just-past', token('at', -1));
    cache.set('past', token('at', -5_000));
    cache.set('endless', { ...token('at', 0), usableUntil: Number.POSITIVE_INFINITY });
    // node-cache reads a TTL of 0 as "forever": the first would never go.
    mock.timers.tick(0);
    assert.equal(cache.get('now'), undefined);
    assert.equal(cache.get('just-past'), undefined);
    assert.equal(cache.get('past'), undefined);
    assert.equal(cache.get('endless'), undefined);
  });

  it('delete drops the token', () => {
    cache.set('c\u0000', token('at', 60_000));
    cache.delete('c\u0000');
    assert.equal(cache.get('c\u0000'), undefined);
  });

  it('deleteIfHolds drops the token only while it is still the one cached', () => {
    cache.set('c\u0000', token('old', 60_000));
    cache.deleteIfHolds('c\u0000', 'other');
    assert.equal(cache.get('c\u0000')?.accessToken, 'old', 'a rejection of another token leaves this one');
    cache.deleteIfHolds('c\u0000', 'old');
    assert.equal(cache.get('c\u0000'), undefined);
    assert.doesNotThrow(() => cache.deleteIfHolds('absent\u0000', 'old'));
  });

  it('dropPrefix drops every token of a connection and no other', () => {
    cache.set('a\u0000', token('1', 60_000));
    cache.set('a\u0000scope=x', token('2', 60_000));
    cache.set('b\u0000', token('3', 60_000));
    cache.set('b\u0000a\u0000', token('4', 60_000));
    cache.dropPrefix('a\u0000');
    assert.equal(cache.get('a\u0000'), undefined);
    assert.equal(cache.get('a\u0000scope=x'), undefined);
    assert.equal(cache.get('b\u0000')?.accessToken, '3');
    assert.equal(cache.get('b\u0000a\u0000')?.accessToken, '4');
  });

  it('expiries: the soonest expiry in seconds per connection, whatever the order of the tokens', () => {
    cache.set('a\u0000scope=late', token('1', 60_000, 90_000));
    cache.set('a\u0000scope=soon', token('2', 20_000, 45_500));
    cache.set('a\u0000scope=later', token('3', 60_000, 120_000));
    cache.set('b\u0000', token('4', 60_000, 300_000));
    assert.deepEqual(
      cache.expiries(),
      new Map([
        ['a', 45.5],
        ['b', 300],
      ]),
    );
    assert.deepEqual(
      cache.expiries(NOW + 500),
      new Map([
        ['a', 45],
        ['b', 299.5],
      ]),
    );
  });

  it('expiries leaves out a token with no finite expiry and one that has just expired', () => {
    cache.set('endless\u0000', token('1', 60_000, Number.POSITIVE_INFINITY));
    cache.set('short\u0000', token('2', 1_000));
    cache.set('long\u0000', token('3', 60_000, 90_000));
    // The short one has expired but no sweep has run: its id is still listed, its token is gone.
    mock.timers.tick(1_001);
    assert.deepEqual(cache.expiries(), new Map([['long', 88.999]]));
  });
});

describe('local token cache: close', () => {
  it('lets go of its tokens: no housekeeping timer keeps a closed cache alive', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const held = (() => {
      const cache = new LocalTokenCache();
      // Real time here (no mocked Date): kept for a minute from now.
      const t = token('at', 60_000);
      cache.set('c\u0000', t, NOW);
      assert.equal(cache.get('c\u0000'), t);
      cache.close();
      return new WeakRef(t);
    })();
    // A WeakRef's target is kept to the end of the job that made it; collect on a later turn.
    await nextTurn();
    gc();
    await nextTurn();
    assert.equal(held.deref(), undefined);
  });
});
