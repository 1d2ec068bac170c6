/**
 * A deadline kept by the waiter, not by the transport. A socket may never emit another event (a
 * `101 Switching Protocols` that Node answers by dropping the socket, a peer that stops mid-body):
 * the timer here ends the wait anyway, and aborts the work so that it stops spending resources.
 *
 * In the token path one owner decides the time, the provider: the caller's budget (withDeadline)
 * and, inside it, each attempt's (cutShort). Everything below it (connection-client.ts, the
 * transport) gets only the AbortSignal and arms no timer of its own for the whole request; the
 * connect phase's limit is the one dispatcher option (auth-server-dispatcher.ts), and it can only
 * end a request earlier than the signal.
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

/**
 * A part of the work under `parent` that must end `ms` from now at the latest (an attempt inside
 * the caller's budget): its signal aborts when `parent` does or when the time is up, with a
 * `TimeoutSignal`-like `expired()` as the reason. `clear()` lets go of the timer once the part is over.
 */
export function cutShort(parent: AbortSignal, ms: number, expired: () => Error): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const onParent = () => controller.abort(parent.reason);
  const timer = setTimeout(() => controller.abort(expired()), Math.max(1, Math.min(ms, MAX_TIMER_MS)));
  const clear = () => {
    clearTimeout(timer);
    parent.removeEventListener('abort', onParent);
  };
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  controller.signal.addEventListener('abort', clear, { once: true });
  return { signal: controller.signal, clear };
}

/**
 * `work` as a waiter under `signal` sees it: its outcome, or `aborted(reason)` as soon as the signal
 * aborts, whichever comes first. No timer: the signal's owner keeps the time. Whatever work does or
 * fails to do afterwards (a transport that never settles), the wait is over.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, aborted: (reason: unknown) => Error): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(aborted(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    work.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject);
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
