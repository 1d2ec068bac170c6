/**
 * Run by test/tick-shape.test.ts in a child process with --allow-natives-syntax and --expose-gc:
 * keeps the TickObject shape (or not, with argv "none"), lets full collections run while no tick is
 * queued, and prints as JSON whether a TickObject made afterwards still has the kept object's map.
 */
import { createHook } from 'node:async_hooks';
import { keepTickShape } from '../../src/tick-shape.js';

const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

function nextTickObject(): object {
  let captured: object | undefined;
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type === 'TickObject') captured ??= resource;
    },
  }).enable();
  process.nextTick(() => undefined);
  hook.disable();
  return captured!;
}

const kept = keepTickShape();
setTimeout(() => {
  const gc = (globalThis as { gc?: () => void }).gc!;
  for (let i = 0; i < 3; i++) gc();
  const fresh = nextTickObject();
  process.stdout.write(`${JSON.stringify({ kept: kept !== undefined, isTick: kept !== undefined && 'callback' in kept, again: keepTickShape() === kept, sameMap: kept !== undefined && haveSameMap(kept, fresh) })}\n`);
}, 20);
