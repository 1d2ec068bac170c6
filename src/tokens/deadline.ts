/**
 * A deadline kept by the waiter, not by the transport. A socket may never emit another event (a
 * `101 Switching Protocols` that Node answers by dropping the socket, a peer that stops mid-body):
 * the timer here ends the wait anyway, and aborts the work so that it stops spending resources.
 */

/** Node fires a timer longer than this after 1 ms (TimersOverflowWarning): never arm one. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `work` with an AbortSignal and settles with it, or with `expired()` once `ms` have passed,
 * whichever comes first. The signal is aborted (with the expiry error as its reason) when the
 * deadline wins, so the work can tear down its sockets and timers.
 */
export function withDeadline<T>(ms: number, work: (signal: AbortSignal) => Promise<T>, expired: () => Error): Promise<T> {
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        const error = expired();
        reject(error);
        controller.abort(error);
      },
      Math.max(1, Math.min(ms, MAX_TIMER_MS)),
    );
    // The executor turns a synchronous throw of `work` into a rejection, like an async function would.
    new Promise<T>((started) => started(work(controller.signal))).finally(() => clearTimeout(timer)).then(resolve, reject);
  });
}

/** Resolves at `time` (ms since epoch) or rejects with the signal's reason when it aborts first. */
export async function sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
  // Timers run on a monotonic clock and may wake a millisecond before Date.now() reaches `time`.
  for (let left = time - Date.now(); left > 0; left = time - Date.now()) {
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(done, Math.min(left, MAX_TIMER_MS));
      function done(): void {
        signal?.removeEventListener('abort', aborted);
        resolve();
      }
      function aborted(): void {
        clearTimeout(timer);
        reject(signal!.reason as Error);
      }
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }
  signal?.throwIfAborted();
}
