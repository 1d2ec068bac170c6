/**
 * The Lua scripts of the shared token cache. Each runs atomically on Redis, so a read and the
 * write that depends on it cannot be split by another replica's call; every key a script touches
 * shares the entry's {hash tag}, so it runs on one Cluster node.
 */

/** GET and PTTL in one round trip: the remaining TTL re-bases the entry's times on this replica's clock. */
export const READ_SCRIPT = `return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}`;

/**
 * Take the lease unless another replica holds it. A lease already holding this replica's claim
 * counts as taken: a request whose answer timed out may have been granted after all, and the next
 * attempt (with the same claim) finds out. The entry must still be the value the caller read
 * (ARGV[3], '' for none): read and lease are two calls, and a replica that stored a token and gave
 * its lease back between them would otherwise leave a free lease over a fresh entry, and a second
 * token request. 2 says the entry changed: read it again.
 */
export const LEASE_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return 1 end
if holder then return 0 end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[3] then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** The lease holder's last step: store the token (if any), give the lease back if still ours, tell the waiters. */
export const SETTLE_SCRIPT = `
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`;

/** Delete the entry only if it still holds the revoked token (its fingerprint prefix); tell every replica. */
export const INVALIDATE_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, #ARGV[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`;
