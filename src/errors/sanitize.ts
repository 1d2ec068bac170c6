/**
 * Text that came from a token endpoint or upstream (an `error_description`, say) is never echoed
 * raw (http-proxy-middleware's `sanitize`): control characters are stripped and the length is capped.
 */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]+/g;
const MAX_DETAIL_LENGTH = 256;

export function sanitizeText(text: unknown, max = MAX_DETAIL_LENGTH): string | undefined {
  if (typeof text !== 'string') return undefined;
  const clean = text.replace(CONTROL_CHARS, ' ').trim();
  if (clean === '') return undefined;
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
