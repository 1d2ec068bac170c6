/**
 * Durations in the config (`rotateEvery`, `overlap`): a whole number and a unit, `s`, `m` or `h`
 * (`20s`, `15m`, `720h`). Strings rather than milliseconds because the values span seconds to
 * months and a bare number would hide its unit.
 */

export const DURATION_PATTERN = /^(\d{1,9})(s|m|h)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds of a duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_PATTERN.exec(text);
  if (match === null) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
