/**
 * TLS material from secrets. It is checked when the config loads, so a wrong certificate or key is
 * a config error with a key path rather than a handshake failure at the first request.
 */
import { createHash, X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import type { Secret } from './secret.js';

/** How an outbound TLS connection (token endpoint or upstream) verifies its server. */
export interface TlsVerify {
  /** A PEM CA bundle that replaces the system roots, or undefined for the system roots. */
  readonly ca: Secret | undefined;
  readonly insecureSkipVerify: boolean;
  /** Tells these settings apart (agent cache keys, fingerprints) without carrying the CA itself. */
  readonly id: string;
}

/** A certificate (chain) and its private key, both PEM. */
export interface TlsKeyPair {
  readonly certificate: Secret;
  readonly key: Secret;
}

/** Enough of a SHA-256 to tell PEM blocks apart in an id, without carrying them. */
const shortHash = (pem: string) => createHash('sha256').update(pem).digest('hex').slice(0, 16);

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Why a CA bundle is unusable, or undefined. Node accepts a `ca` with no certificate in it and
 * then trusts nothing, which would look like an outage rather than a config mistake.
 */
export function caBundleProblem(pem: string): string | undefined {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return 'not a PEM CA bundle (no -----BEGIN CERTIFICATE----- block)';
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (error) {
      return `certificate ${index + 1} of the bundle cannot be read: ${(error as Error).message}`;
    }
  }
  return undefined;
}

/** Why a certificate and key cannot be used together, or undefined. */
export function keyPairProblem(pair: TlsKeyPair): { field: 'certificate' | 'key'; message: string } | undefined {
  const certificate = pair.certificate.reveal();
  const key = pair.key.reveal();
  try {
    new X509Certificate(certificate);
  } catch (error) {
    return { field: 'certificate', message: `cannot read the certificate as PEM X.509: ${(error as Error).message}` };
  }
  if (key.includes('ENCRYPTED')) {
    return { field: 'key', message: 'encrypted PEM keys are not supported; store the key unencrypted in a protected secret' };
  }
  try {
    createSecureContext({ cert: certificate, key });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      field: 'key',
      message:
        code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH'
          ? 'the key does not belong to the certificate'
          : `cannot use the key: ${(error as Error).message}`,
    };
  }
  return undefined;
}

/** Tells key pairs apart (agent cache keys) by their certificate, which is public. */
export function keyPairId(pair: TlsKeyPair): string {
  return shortHash(pair.certificate.reveal());
}

export function tlsVerify(ca: Secret | undefined, insecureSkipVerify: boolean): TlsVerify {
  const caHash = ca === undefined ? '' : shortHash(ca.reveal());
  return Object.freeze({ ca, insecureSkipVerify, id: `${caHash}:${insecureSkipVerify ? 'insecure' : 'verify'}` });
}

/**
 * The keep-alive agent for an outbound connection (token endpoint or upstream). TLS options belong
 * on the agent: Node lets agent options override request options, and sockets are pooled per agent,
 * so connections with different trust or client certificates never share one.
 */
export function outboundAgent(
  protocol: string,
  options: http.AgentOptions,
  verify: TlsVerify | undefined,
  credentials: TlsKeyPair | undefined,
): http.Agent {
  return protocol === 'https:' ? new https.Agent({ ...options, ...clientTlsOptions(verify, credentials) }) : new http.Agent(options);
}

/**
 * The client side of an outbound TLS connection, with its secure context built now: a CA bundle
 * or key pair OpenSSL refuses throws here, when the config is compiled (and so in `validate`), not
 * at the first handshake. The compile stage and outboundAgent() call this same function.
 */
export function clientTlsOptions(verify: TlsVerify | undefined, credentials: TlsKeyPair | undefined): ConnectionOptions {
  const options: ConnectionOptions = {};
  if (verify?.insecureSkipVerify === true) options.rejectUnauthorized = false;
  if (verify?.ca === undefined && credentials === undefined) return options;
  options.secureContext = createSecureContext({
    ca: verify?.ca?.reveal(),
    cert: credentials?.certificate.reveal(),
    key: credentials?.key.reveal(),
  });
  return options;
}

/** The listener's certificate as a secure context (built when the config is compiled, reused at start and on reload). */
export function serverTlsOptions(pair: TlsKeyPair): { secureContext: SecureContext; cert: string; key: string } {
  const cert = pair.certificate.reveal();
  const key = pair.key.reveal();
  return { secureContext: createSecureContext({ cert, key }), cert, key };
}
