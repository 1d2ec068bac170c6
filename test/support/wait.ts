/**
 * Waiting for a condition instead of for a while: tests poll what they wait for (a metric, a count,
 * a socket state), so a loaded machine makes them slower, never wrong.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parseExposition } from './observability.js';

const POLL_MS = 20;

/**
 * Resolves once `condition` holds, polled every 20 ms; rejects naming `what` after `timeoutMs` (a
 * bound for a hang, far above what the condition should take).
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await delay(POLL_MS);
  }
}

/** The sum of a metric's samples over all its label sets, from the admin /metrics exposition. */
export async function metricTotal(admin: string, name: string): Promise<number> {
  const samples = parseExposition(await (await fetch(`${admin}/metrics`)).text());
  let total = 0;
  for (const [key, value] of samples) if (key === name || key.startsWith(`${name}{`)) total += value;
  return total;
}

/**
 * Resolves once the gateway has no upstream request and no token fetch under way
 * (tokengate_upstream_requests_in_flight and tokengate_token_fetches_in_flight are 0 everywhere):
 * everything callers started, abandoned or not, has settled and let go of what it held.
 */
export async function gatewayIdle(admin: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () =>
      (await metricTotal(admin, 'tokengate_upstream_requests_in_flight')) === 0 &&
      (await metricTotal(admin, 'tokengate_token_fetches_in_flight')) === 0,
    'no upstream request and no token fetch in flight',
    timeoutMs,
  );
}
