/**
 * `cache.redis`: one server (`url`), a master found through Sentinel, or a Cluster. Exactly one of
 * them; passwords are secrets, TLS is verified like every other outbound connection.
 */
import { DEFAULT_REDIS_URL, type RawConfig } from './schema.js';
import type { SecretRef, TlsVerifyRef } from './connection.js';
import type { Report } from './report.js';
import type { RedisNode, RedisSettings, RedisTopology } from './types.js';

type RawRedis = RawConfig['cache']['redis'];

const KEY = ['cache', 'redis'] as const;

/** "host:port" (the schema checked the shape), an IPv6 host without its brackets. */
function node(text: string): RedisNode {
  const colon = text.lastIndexOf(':');
  return Object.freeze({ host: text.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(colon + 1)) });
}

export function redisSettings(raw: RawRedis, secretRef: SecretRef, verify: TlsVerifyRef, report: Report): RedisSettings {
  const given = (['url', 'sentinel', 'cluster'] as const).filter((key) => raw[key] !== undefined);
  if (given.length > 1) {
    report(
      [...KEY, given[1]!],
      `set only one of cache.redis.url, cache.redis.sentinel and cache.redis.cluster (${given.join(' and ')} are set)`,
    );
  }
  for (const [index, text] of [...(raw.sentinel?.nodes ?? []), ...(raw.cluster?.nodes ?? [])].entries()) {
    const port = Number(text.slice(text.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535)
      report([...KEY, raw.sentinel === undefined ? 'cluster' : 'sentinel', 'nodes', index], 'port must be 1 to 65535');
  }
  // The entry and its lease share a slot through a {…} hash tag after the prefix: a brace in the
  // prefix would become the tag instead and scatter them.
  if (raw.cluster !== undefined && /[{}]/.test(raw.keyPrefix)) {
    report([...KEY, 'keyPrefix'], 'must not contain { or } with cluster (Redis would take it as the hash tag)');
  }
  return Object.freeze({ keyPrefix: raw.keyPrefix, topology: topology(raw, secretRef, verify, report) });
}

function topology(raw: RawRedis, secretRef: SecretRef, verify: TlsVerifyRef, report: Report): RedisTopology {
  const password = (ref: { secret: string } | undefined, keyPath: PropertyKey[]) =>
    ref === undefined ? undefined : secretRef(ref.secret, [...keyPath, 'secret']);
  if (raw.sentinel !== undefined) {
    const { sentinel } = raw;
    const at = [...KEY, 'sentinel'];
    return Object.freeze({
      kind: 'sentinel',
      name: sentinel.name,
      nodes: Object.freeze(sentinel.nodes.map(node)),
      username: sentinel.username,
      password: password(sentinel.password, [...at, 'password']),
      sentinelUsername: sentinel.sentinelUsername,
      sentinelPassword: password(sentinel.sentinelPassword, [...at, 'sentinelPassword']),
      tls: verify(sentinel.tls, [...at, 'tls']),
    });
  }
  if (raw.cluster !== undefined) {
    const { cluster } = raw;
    const at = [...KEY, 'cluster'];
    return Object.freeze({
      kind: 'cluster',
      nodes: Object.freeze(cluster.nodes.map(node)),
      username: cluster.username,
      password: password(cluster.password, [...at, 'password']),
      tls: verify(cluster.tls, [...at, 'tls']),
    });
  }
  const url = raw.url ?? DEFAULT_REDIS_URL;
  // Checked here, not by ioredis at start: its "Invalid URL" names no key, and the URL often holds a password.
  if (!/^rediss?:\/\//.test(url) || !URL.canParse(url)) report([...KEY, 'url'], 'must be a valid redis:// or rediss:// URL');
  return Object.freeze({ kind: 'server', url });
}
