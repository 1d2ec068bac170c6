/**
 * Keeps V8's shape of Node's `process.nextTick` entries alive for the life of the process.
 *
 * Every `process.nextTick` builds a "TickObject" from one object literal inside Node, and Node's
 * streams and http modules call it several times per proxied request. V8 holds that literal's
 * object shape (its map) weakly. When the process has been idle for a few seconds (after start-up,
 * or between bursts of traffic) V8's memory reducer runs full collections; with no tick queued at
 * that moment the map dies, the inline caches that named it are left pointing at a dead map, and
 * the code V8 optimises afterwards adds each property of each TickObject through the runtime.
 *
 * Measured on the benchmark's machine (2 vCPUs, Node 20): gateways left idle 15 s before load
 * spent 59-62 µs of CPU per proxied request without this and 48-52 µs with it; gateways that got
 * traffic before the reducer ran were fast either way, which made a gateway's speed depend on how
 * long it sat idle after start. One live TickObject keeps its map, and the maps it came from, alive.
 */
import { createHook } from 'node:async_hooks';

let kept: object | undefined;

/** Takes one TickObject and holds it; idempotent. */
export function keepTickShape(): object | undefined {
  kept ??= freshTickObject();
  return kept;
}

/** The TickObject of a new `process.nextTick`; the async hook is enabled only around that call. */
export function freshTickObject(): object | undefined {
  let captured: object | undefined;
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type === 'TickObject') captured ??= resource;
    },
  });
  hook.enable();
  try {
    process.nextTick(noop);
  } finally {
    hook.disable();
  }
  return captured;
}

function noop(): void {}
