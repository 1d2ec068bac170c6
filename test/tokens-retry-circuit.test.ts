/**
 * The retry policy and the circuit breaker (tokens/retry.ts, tokens/circuit.ts), pinned to the
 * millisecond: backoff bounds, Retry-After against cap and deadline, threshold, probe, doubling
 * open time and its ceiling.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { TokenError } from '../src/errors/gateway.js';
import { Circuits } from '../src/tokens/circuit.js';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, nextAttemptAt } from '../src/tokens/retry.js';

afterEach(() => mock.restoreAll());

const retryable = new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'network', { retryable: true });
const policy = { maxAttempts: 10, retryAfterCapMs: 5_000 };
const NOW = 1_000_000;
const FAR = NOW + 1_000_000;

describe('nextAttemptAt', () => {
  it('waits the full exponential backoff at the top of the jitter: base × 2^attempt', () => {
    mock.method(Math, 'random', () => 1);
    assert.equal(nextAttemptAt(1, retryable, policy, FAR, NOW), NOW + BACKOFF_BASE_MS * 2);
    assert.equal(nextAttemptAt(3, retryable, policy, FAR, NOW), NOW + BACKOFF_BASE_MS * 8);
  });

  it('caps the backoff', () => {
    mock.method(Math, 'random', () => 1);
    assert.equal(nextAttemptAt(9, retryable, policy, FAR, NOW), NOW + BACKOFF_CAP_MS);
  });

  it('full jitter: may retry at once', () => {
    mock.method(Math, 'random', () => 0);
    assert.equal(nextAttemptAt(1, retryable, policy, FAR, NOW), NOW);
  });

  it('never before the Retry-After the server sent, even when the backoff is shorter', () => {
    mock.method(Math, 'random', () => 1);
    assert.equal(nextAttemptAt(1, retryable.with({ retryAfter: 2 }), policy, FAR, NOW), NOW + 2_000);
  });

  it('a Retry-After exactly at the cap is honoured; one past it gives up', () => {
    mock.method(Math, 'random', () => 0);
    assert.equal(nextAttemptAt(1, retryable.with({ retryAfter: 5 }), policy, FAR, NOW), NOW + 5_000);
    assert.equal(nextAttemptAt(1, retryable.with({ retryAfter: 5.001 }), policy, FAR, NOW), undefined);
  });

  it('gives up on the last attempt, and retries on the one before', () => {
    mock.method(Math, 'random', () => 0);
    assert.equal(nextAttemptAt(10, retryable, policy, FAR, NOW), undefined);
    assert.equal(nextAttemptAt(9, retryable, policy, FAR, NOW), NOW);
  });

  it('gives up on an error that is not retryable', () => {
    mock.method(Math, 'random', () => 0);
    assert.equal(nextAttemptAt(1, new TokenError('TOKEN_REJECTED', 'invalid_client'), policy, FAR, NOW), undefined);
  });

  it('gives up when the pause would end at or past the deadline', () => {
    mock.method(Math, 'random', () => 0);
    const error = retryable.with({ retryAfter: 1 });
    assert.equal(nextAttemptAt(1, error, policy, NOW + 1_000, NOW), undefined, 'ends exactly at the deadline');
    assert.equal(nextAttemptAt(1, error, policy, NOW + 1_001, NOW), NOW + 1_000);
  });
});

describe('Circuits', () => {
  const options = { failureThreshold: 3, openMs: 100, maxOpenMs: 350 };

  it('stays closed below the threshold and opens exactly at it', () => {
    const circuits = new Circuits(options);
    circuits.failure('c', false, undefined, NOW);
    circuits.failure('c', false, undefined, NOW);
    assert.equal(circuits.openUntil('c'), 0);
    assert.deepEqual(circuits.admit('c', NOW), { allowed: true, probe: false });
    circuits.failure('c', false, undefined, NOW + 5);
    assert.equal(circuits.openUntil('c'), NOW + 105);
    assert.deepEqual(circuits.admit('c', NOW + 104), { allowed: false, openUntil: NOW + 105 });
  });

  it('counts per connection', () => {
    const circuits = new Circuits({ ...options, failureThreshold: 1 });
    circuits.failure('a', false, undefined, NOW);
    assert.equal(circuits.admit('b', NOW).allowed, true);
    assert.equal(circuits.openUntil('b'), 0);
  });

  it('more failures while open do not push the reopening further out', () => {
    const circuits = new Circuits({ ...options, failureThreshold: 1 });
    circuits.failure('c', false, undefined, NOW);
    circuits.failure('c', false, undefined, NOW + 50);
    assert.equal(circuits.openUntil('c'), NOW + 100);
  });

  it('half-open at openUntil: one probe, everyone else waits', () => {
    const circuits = new Circuits({ ...options, failureThreshold: 1 });
    circuits.failure('c', false, undefined, NOW);
    assert.deepEqual(circuits.admit('c', NOW + 100), { allowed: true, probe: true });
    assert.deepEqual(circuits.admit('c', NOW + 100), { allowed: false, openUntil: NOW + 100 });
  });

  it('a failed probe reopens for twice as long, up to the ceiling', () => {
    const circuits = new Circuits({ ...options, failureThreshold: 1 });
    circuits.failure('c', false, undefined, NOW);
    let at = NOW + 100;
    for (const expected of [200, 350, 350]) {
      assert.equal(circuits.admit('c', at).allowed, true);
      circuits.failure('c', true, undefined, at);
      assert.equal(circuits.openUntil('c'), at + expected);
      at += expected;
    }
  });

  it('a failed probe frees the probe slot for the next half-open moment', () => {
    const circuits = new Circuits({ ...options, failureThreshold: 1 });
    circuits.failure('c', false, undefined, NOW);
    assert.equal(circuits.admit('c', NOW + 100).allowed, true);
    circuits.failure('c', true, undefined, NOW + 100);
    assert.deepEqual(circuits.admit('c', NOW + 300), { allowed: true, probe: true });
  });

  it('release frees a probe slot, and only a probe', () => {
    const circuits = new Circuits({ ...options, failureThreshold: 1 });
    circuits.failure('c', false, undefined, NOW);
    assert.equal(circuits.admit('c', NOW + 100).allowed, true);
    circuits.release('c', false);
    assert.equal(circuits.admit('c', NOW + 100).allowed, false, 'a non-probe release leaves the probe in flight');
    circuits.release('c', true);
    assert.deepEqual(circuits.admit('c', NOW + 100), { allowed: true, probe: true });
    circuits.release('unknown', true);
    assert.equal(circuits.openUntil('unknown'), 0);
  });

  it('Retry-After keeps the circuit shut until then, even below the threshold, capped at the ceiling', () => {
    const circuits = new Circuits(options);
    circuits.failure('c', false, 200, NOW);
    assert.equal(circuits.openUntil('c'), NOW + 200);
    circuits.failure('d', false, 10_000, NOW);
    assert.equal(circuits.openUntil('d'), NOW + 350);
  });

  it('a short Retry-After does not shorten an open circuit', () => {
    const circuits = new Circuits({ ...options, failureThreshold: 1 });
    circuits.failure('c', false, 10, NOW);
    assert.equal(circuits.openUntil('c'), NOW + 100);
  });

  it('success and forget close the circuit and reset the count', () => {
    const circuits = new Circuits(options);
    for (const end of ['success', 'forget'] as const) {
      circuits.failure('c', false, undefined, NOW);
      circuits.failure('c', false, undefined, NOW);
      if (end === 'success') circuits.success('c');
      else circuits.forget('c');
      circuits.failure('c', false, undefined, NOW);
      assert.equal(circuits.openUntil('c'), 0, `after ${end} one failure does not open it`);
      circuits.success('c');
    }
  });

  it('a fresh connection starts with the configured open time, not a doubled one', () => {
    const circuits = new Circuits({ ...options, failureThreshold: 1 });
    circuits.failure('c', false, undefined, NOW);
    circuits.success('c');
    circuits.failure('c', false, undefined, NOW);
    assert.equal(circuits.openUntil('c'), NOW + 100);
  });
});
