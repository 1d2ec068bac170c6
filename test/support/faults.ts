/** Helpers for the resilience tests: one metric sample from the admin listener, timing. */
import { parseExposition, sampleKey } from './observability.js';

/** The value of one sample (its full label set) in the admin /metrics exposition; 0 when absent. */
export async function metricValue(admin: string, name: string, labels: Record<string, string>): Promise<number> {
  const samples = parseExposition(await (await fetch(`${admin}/metrics`)).text());
  return samples.get(sampleKey(name, labels)) ?? 0;
}

/** Milliseconds a call took, with its result. */
export async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await call();
  return { value, ms: performance.now() - started };
}
