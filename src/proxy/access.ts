/**
 * The inbound access policy: who may make the gateway spend a connection's credentials. API keys
 * are compared in constant time; source addresses against CIDR allow-lists (net.BlockList).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv4, type BlockList } from 'node:net';
import { allowList } from '../config/checks.js';
import type { AccessPolicy, Config } from '../config/types.js';
import type { AccessDenial } from '../errors/reasons.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

export class AccessChecker {
  readonly header: string;
  readonly #keys: readonly Buffer[];
  readonly #allow: BlockList | undefined;

  /** Throws a ValueProblem (config/checks.ts) for an allowFrom entry net.BlockList refuses. */
  constructor(policy: AccessPolicy) {
    this.header = policy.header;
    // Comparing digests keeps the comparison constant-time whatever the lengths.
    this.#keys = policy.apiKeys.map((secret) => digest(secret.reveal()));
    // The same function the config's semantic stage checked allowFrom with: what passed there builds here.
    if (policy.allowFrom.length > 0) this.#allow = allowList(policy.allowFrom);
  }

  /** Why the caller is refused, or undefined when it may pass. Address first: 403 beats 401. */
  check(remoteAddress: string | undefined, key: string | string[] | undefined): AccessDenial | undefined {
    if (this.#allow !== undefined) {
      if (remoteAddress === undefined) return 'address';
      const address = remoteAddress.startsWith('::ffff:') && isIPv4(remoteAddress.slice(7)) ? remoteAddress.slice(7) : remoteAddress;
      if (!this.#allow.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')) return 'address';
    }
    if (this.#keys.length > 0) {
      if (typeof key !== 'string' || key === '') return 'missing_key';
      const presented = digest(key);
      let match = false;
      for (const expected of this.#keys) match = timingSafeEqual(presented, expected) || match;
      if (!match) return 'wrong_key';
    }
    return undefined;
  }
}

/**
 * The header names that carry callers' access keys, under the top-level policy and every route's
 * (lower-cased at load). None of them is ever forwarded, whichever route a request takes: a key for
 * the gateway is not the upstream's business, and a route with a policy of its own does not make
 * the gateway-wide key a header of the upstream's.
 */
export function configuredAccessHeaders(config: Config): ReadonlySet<string> {
  const headers = new Set<string>();
  for (const policy of [config.access, ...config.routes.map((route) => route.access)]) if (policy !== undefined) headers.add(policy.header);
  return headers;
}
