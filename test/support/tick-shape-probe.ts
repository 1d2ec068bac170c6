/**
 * Run by test/tick-shape.test.ts in a child process with --allow-natives-syntax and --expose-gc:
 * keeps the TickObject shape, lets full collections run while no tick is queued, and prints as
 * JSON whether a TickObject made afterwards still has the kept object's map.
 */
import { freshTickObject, keepTickShape } from '../../src/proxy/tick-shape.js';

// eslint-disable-next-line @typescript-eslint/no-implied-eval -- V8's %HaveSameMap is only reachable from source compiled at run time
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

const kept = keepTickShape();
setTimeout(() => {
  const gc = (globalThis as { gc?: () => void }).gc!;
  for (let i = 0; i < 3; i++) gc();
  const fresh = freshTickObject()!;
  process.stdout.write(
    `${JSON.stringify({ kept: kept !== undefined, isTick: kept !== undefined && 'callback' in kept, again: keepTickShape() === kept, sameMap: kept !== undefined && haveSameMap(kept, fresh) })}\n`,
  );
}, 20);
