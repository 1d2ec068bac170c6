/**
 * Semantic checks on single values, written so that the runtime uses the very same functions:
 * what the config stage accepts here is what the proxy then builds, by construction.
 */
import { validateHeaderName } from 'node:http';
import { BlockList, isIP, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname.endsWith('.localhost');
}

/** A value the runtime cannot use, with the index of the offending list entry when there is one. */
export class ValueProblem extends Error {
  constructor(
    message: string,
    readonly index?: number,
  ) {
    super(message);
    this.name = 'ValueProblem';
  }
}

/**
 * The allow-list of `access.allowFrom`: each entry an IPv4 or IPv6 address, optionally with a
 * prefix length. The check is net.BlockList's own (`zz:zz/64` or `::1::/64` are refused there),
 * plus the prefix written as plain digits (Number('') would be 0, which allows every address).
 */
export function allowList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  entries.forEach((entry, index) => {
    const slash = entry.indexOf('/');
    const address = slash < 0 ? entry : entry.slice(0, slash);
    const bits = slash < 0 ? undefined : entry.slice(slash + 1);
    const family = isIP(address);
    if (family === 0) throw new ValueProblem(`"${entry}" is not an IPv4 or IPv6 address or CIDR block`, index);
    const max = family === 4 ? 32 : 128;
    if (bits !== undefined && !/^\d{1,3}$/.test(bits)) throw new ValueProblem(`"${entry}": the prefix length must be 0 to ${max}`, index);
    const prefix = bits === undefined ? max : Number(bits);
    if (prefix > max) throw new ValueProblem(`"${entry}": the prefix length must be 0 to ${max}`, index);
    try {
      list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
    } catch (error) {
      throw new ValueProblem(`"${entry}" is not an IPv4 or IPv6 CIDR block (${(error as Error).message})`, index);
    }
  });
  return list;
}

/**
 * A header name as Node will accept it on a request (RFC 9110 §5.1: a token). A name with a
 * space or a colon could never arrive, so a policy keyed on it would refuse every caller.
 */
export function headerNameProblem(name: string): string | undefined {
  try {
    validateHeaderName(name);
    return undefined;
  } catch {
    return `"${name}" is not a valid HTTP header name (RFC 9110 §5.1: letters, digits and !#$%&'*+-.^_\`|~, no spaces)`;
  }
}

/**
 * `match.host` as the router compares it: lower case, and an internationalised name as its A-label
 * (UTS #46, node:url domainToASCII), because a Host header carries `xn--bcher-kva.example`, never
 * `bücher.example`. An IPv6 literal keeps its brackets, as routing/router.ts hostName() does.
 */
export function normaliseHost(host: string): string | ValueProblem {
  if (host.startsWith('[') && host.endsWith(']')) {
    return isIPv6(host.slice(1, -1)) ? host.toLowerCase() : new ValueProblem(`"${host}" is not an IPv6 address in brackets`);
  }
  if (host.includes(':')) return new ValueProblem(`"${host}": a host name without a port (the port is not matched)`);
  const ascii = domainToASCII(host);
  if (ascii === '' || /[\s/?#@\\]/.test(ascii)) return new ValueProblem(`"${host}" is not a valid host name`);
  return ascii.toLowerCase();
}
