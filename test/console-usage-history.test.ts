/** The per-minute history behind the Usage Data chart: an hour, per configured connection, in fixed memory. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HISTORY_MINUTES, UsageHistory } from '../src/observability/usage-history.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('usage history', () => {
  it('counts token requests and failures per minute, oldest first, the current minute last', () => {
    const history = new UsageHistory();
    history.keepOnly(new Set(['a']));
    history.add('a', 'request', T0);
    history.add('a', 'request', T0 + 1_000);
    history.add('a', 'failure', T0 + 2_000);
    history.add('a', 'request', T0 + MINUTE);
    const { minutes, connections } = history.snapshot(T0 + MINUTE + 5_000);
    assert.equal(minutes.length, HISTORY_MINUTES);
    assert.equal(minutes.at(-1), (T0 + MINUTE) / 1000);
    assert.deepEqual(connections.a?.requests.slice(-2), [2, 1]);
    assert.deepEqual(connections.a?.failures.slice(-2), [1, 0]);
  });

  it('forgets minutes older than an hour: a reused slot starts from zero', () => {
    const history = new UsageHistory();
    history.keepOnly(new Set(['a']));
    history.add('a', 'request', T0);
    history.add('a', 'request', T0 + HISTORY_MINUTES * MINUTE);
    const { connections } = history.snapshot(T0 + HISTORY_MINUTES * MINUTE);
    assert.equal(
      connections.a?.requests.reduce((sum, n) => sum + n, 0),
      1,
    );
  });

  it('keeps rings only for configured connections, so callers cannot grow it', () => {
    const history = new UsageHistory();
    history.keepOnly(new Set(['a', 'b']));
    history.add('unknown', 'request', T0);
    history.keepOnly(new Set(['b']));
    assert.deepEqual(Object.keys(history.snapshot(T0).connections), ['b']);
  });
});
