/**
 * The shared cache's own failures, as codes the store branches on (never on message text). Redis
 * and ioredis errors keep their own names (ReplyError, MaxRetriesPerRequestError) and errno codes
 * (ECONNREFUSED); none of them reaches a caller: every cache failure ends in a local token fetch.
 */
export const CACHE_STORE_ERROR_CODES = [
  /** A call outlived REDIS_COMMAND_TIMEOUT_MS: Redis is slow rather than away. */
  'CACHE_STORE_TIMEOUT',
  /** The peer answered a call with something Redis would not (a broken Redis, or not Redis at all). */
  'CACHE_REPLY_INVALID',
  /** A stored value does not decrypt or parse (a rotated key, a bug, tampering): read as a miss. */
  'CACHE_ENTRY_UNREADABLE',
  /** A stored token with impossible times (tampering?): read as a miss. */
  'CACHE_ENTRY_IMPLAUSIBLE',
  /** The connection closed (a crashed or killed Redis) before any call failed. */
  'CACHE_CONNECTION_CLOSED',
] as const;
export type CacheStoreErrorCode = (typeof CACHE_STORE_ERROR_CODES)[number];

export class CacheStoreError extends Error {
  constructor(
    readonly code: CacheStoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CacheStoreError';
  }
}

/** An answer or a stored value is at fault, not the store's reach: a warning every time, and no sign of an outage. */
export const damagedAnswer = (error: unknown): boolean => error instanceof CacheStoreError && DAMAGED.has(error.code);
const DAMAGED: ReadonlySet<CacheStoreErrorCode> = new Set(['CACHE_REPLY_INVALID', 'CACHE_ENTRY_UNREADABLE', 'CACHE_ENTRY_IMPLAUSIBLE']);

/** The late answer fetch() tolerates a few of before it fetches alone. */
export const timedOut = (error: unknown): boolean => error instanceof CacheStoreError && error.code === 'CACHE_STORE_TIMEOUT';

/** What a log line names a failure by: our code, the errno code, or the error class (ReplyError). */
export function errorCodeOf(error: unknown): string {
  if (error instanceof CacheStoreError) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : typeof error;
}
