/** Key material for the client-authentication tests: generated per run, never checked in. */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as a JWK, with `kid` set, for an oidc-provider client's `jwks`. */
  publicJwk(kid: string): Record<string, unknown>;
}

export type KeySpec = { type: 'rsa'; bits?: number } | { type: 'ec'; curve: 'P-256' | 'P-384' | 'P-521' } | { type: 'ed25519' };

export function generateKey(spec: KeySpec): TestKey {
  const { privateKey, publicKey } =
    spec.type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: spec.bits ?? 2048 })
      : spec.type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: spec.curve })
        : generateKeyPairSync('ed25519');
  return {
    privateKey,
    publicKey,
    publicJwk: (kid) => ({ ...publicKey.export({ format: 'jwk' }), kid }),
  };
}

/** The private key in one of the encodings a `privateKeyJwt` secret may hold. */
export function encodeKey(key: KeyObject, encoding: 'pkcs1' | 'pkcs8' | 'sec1' | 'jwk'): string {
  if (encoding === 'jwk') return JSON.stringify(key.export({ format: 'jwk' }));
  return key.export({ type: encoding, format: 'pem' }) as string;
}

/**
 * A self-signed X.509 certificate for the key, PEM. Node has no certificate generator, so this
 * runs `openssl req -x509`: guard its test with requireProgram('openssl', 'openssl') (support/programs.ts).
 */
export function selfSignedCertificate(key: KeyObject): string {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-cert-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  writeFileSync(keyFile, encodeKey(key, 'pkcs8'), { mode: 0o600 });
  execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=tokengate-test', '-days', '1', '-out', certFile], {
    stdio: 'pipe',
  });
  return readFileSync(certFile, 'utf8');
}
