/**
 * Bad client-authentication settings are config errors at load, each at its key path, never a
 * runtime 502: mismatched algorithm and key, unreadable keys, a certificate of another key, weak
 * HMAC secrets, audience: issuer without an issuer. Key material never appears in the messages.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError, type ConfigProblem } from '../src/config/errors.js';
import { buildConfigOnly } from '../src/runtime/build.js';
import { writeConfig } from './support/gateway.js';
import { encodeKey, generateKey, selfSignedCertificate } from './support/keys.js';
import { requireProgram } from './support/programs.js';

const run = promisify(execFile);
const rsa = generateKey({ type: 'rsa' });
const p256 = generateKey({ type: 'ec', curve: 'P-256' });

/** The config for one connection `c` with the given auth block, its secrets written as files. */
function configWith(auth: string, files: Record<string, string>, extra = 'tokenUrl: http://127.0.0.1:1/token'): string {
  return writeConfig(
    `
secrets:
${Object.keys(files)
  .map((name) => `  ${name}: { file: ${name} }`)
  .join('\n')}
connections:
  c:
    clientId: client
    ${extra}
    ${auth}
`,
    files,
  ).configFile;
}

async function problemsOf(configFile: string): Promise<readonly ConfigProblem[]> {
  try {
    await buildConfigOnly(configFile);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.problems;
  }
  return assert.fail('expected a ConfigError');
}

/** Asserts exactly one problem, at `path`, matching `message`; the secret text never in it. */
async function assertProblem(configFile: string, path: string, message: RegExp, secretText?: string): Promise<void> {
  const problems = await problemsOf(configFile);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0]!.path, path);
  assert.match(problems[0]!.message, message);
  assert.equal(typeof problems[0]!.line, 'number');
  if (secretText !== undefined) assert.equal(problems[0]!.message.includes(secretText), false);
}

describe('privateKeyJwt config errors', () => {
  it('refuses an RSA key with ES256, naming the algorithm path and what the key can do', async () => {
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: ES256 }', { 'key.pem': encodeKey(rsa.privateKey, 'pkcs8') });
    await assertProblem(
      file,
      'connections.c.privateKeyJwt.algorithm',
      /ES256 cannot be used with this RSA key; use RS256, RS384, RS512, PS256, PS384, PS512/,
    );
  });

  it('refuses an EC P-256 key with ES384', async () => {
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: ES384 }', { 'key.pem': encodeKey(p256.privateKey, 'sec1') });
    await assertProblem(file, 'connections.c.privateKeyJwt.algorithm', /ES384 cannot be used with this EC P-256 key; use ES256$/);
  });

  it('refuses an Ed448 key: EdDSA here means Ed25519', async () => {
    const ed448 = generateKeyPairSync('ed448').privateKey;
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: EdDSA }', { 'key.pem': encodeKey(ed448, 'pkcs8') });
    await assertProblem(
      file,
      'connections.c.privateKeyJwt.secret',
      /ed448 keys are not supported; use an RSA, EC P-256\/P-384\/P-521 or Ed25519 key/,
    );
  });

  it('refuses an EC key on a curve JOSE has no algorithm for (secp256k1)', async () => {
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: ES256 }', { 'key.pem': encodeKey(k1, 'sec1') });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /EC secp256k1 keys are not supported/);
  });

  it('refuses an unparsable PEM key at the secret path', async () => {
    const garbage = '-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldC1ieXRlcw==\n-----END PRIVATE KEY-----';
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: RS256 }', { 'key.pem': garbage });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /cannot read the private key as PEM/, 'bm90LWEta2V5');
  });

  it('refuses text that is neither PEM nor JWK', async () => {
    const file = configWith('privateKeyJwt: { secret: key.txt }', { 'key.txt': 'hunter2-not-a-key' });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /cannot read the private key as PEM: not a PEM document/, 'hunter2');
  });

  it('refuses broken JSON as a JWK without echoing any of it', async () => {
    const file = configWith('privateKeyJwt: { secret: key.json }', { 'key.json': '{ "kty": "RSA", "d": "sup3r-s3cret-private-part", ' });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /cannot read the private key as JWK: not valid JSON/, 'sup3r-s3cret');
  });

  it('refuses an encrypted PKCS#8 PEM key', async () => {
    const encrypted = rsa.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string;
    const file = configWith('privateKeyJwt: { secret: key.pem }', { 'key.pem': encrypted });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /encrypted PEM keys are not supported/);
  });

  it('refuses an encrypted legacy (Proc-Type) PKCS#1 PEM key', async () => {
    const encrypted = rsa.privateKey.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string;
    const file = configWith('privateKeyJwt: { secret: key.pem }', { 'key.pem': encrypted });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /encrypted PEM keys are not supported/);
  });

  it('refuses a JWK without the private part d (a public key)', async () => {
    const file = configWith('privateKeyJwt: { secret: key.json, algorithm: ES256 }', { 'key.json': JSON.stringify(p256.publicJwk('k1')) });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /the JWK has no private part \("d"\)/);
  });

  it('refuses a PEM key declared as format: jwk', async () => {
    const file = configWith('privateKeyJwt: { secret: key.pem, format: jwk }', { 'key.pem': encodeKey(rsa.privateKey, 'pkcs8') });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /cannot read the private key as JWK/, 'PRIVATE KEY');
  });

  it('refuses an RSA key shorter than 2048 bits', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const file = configWith('privateKeyJwt: { secret: key.pem }', { 'key.pem': encodeKey(weak, 'pkcs1') });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /at least 2048 bits; this one has 1024/);
  });

  it('refuses an RSASSA-PSS (id-RSASSA-PSS) key, which jose cannot sign with, and names the key to use instead', async () => {
    const pss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey;
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: PS256 }', { 'key.pem': encodeKey(pss, 'pkcs8') });
    await assertProblem(file, 'connections.c.privateKeyJwt.secret', /RSASSA-PSS-only keys .* not supported; use a plain RSA key/);
  });

  it('refuses a certificate of another key', requireProgram('openssl', 'openssl'), async () => {
    const other = generateKey({ type: 'ec', curve: 'P-256' });
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: ES256, certificate: cert.pem }', {
      'key.pem': encodeKey(p256.privateKey, 'sec1'),
      'cert.pem': selfSignedCertificate(other.privateKey),
    });
    await assertProblem(file, 'connections.c.privateKeyJwt.certificate', /the certificate's public key does not match the private key/);
  });

  it('refuses a certificate that is not PEM X.509', async () => {
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: ES256, certificate: cert.pem }', {
      'key.pem': encodeKey(p256.privateKey, 'sec1'),
      'cert.pem': 'not a certificate',
    });
    await assertProblem(file, 'connections.c.privateKeyJwt.certificate', /cannot read the certificate as PEM X\.509/);
  });

  it('refuses thumbprint: sha1 without a certificate', async () => {
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: ES256, thumbprint: sha1 }', {
      'key.pem': encodeKey(p256.privateKey, 'sec1'),
    });
    await assertProblem(file, 'connections.c.privateKeyJwt.thumbprint', /set certificate too/);
  });

  it('refuses audience: issuer on a connection with tokenUrl and no issuer', async () => {
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: ES256, audience: issuer }', {
      'key.pem': encodeKey(p256.privateKey, 'sec1'),
    });
    await assertProblem(file, 'connections.c.privateKeyJwt.audience', /audience: issuer needs the connection to set issuer/);
  });

  it('refuses an algorithm outside the list (HS256 is client_secret_jwt)', async () => {
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: HS256 }', { 'key.pem': encodeKey(p256.privateKey, 'sec1') });
    await assertProblem(file, 'connections.c.privateKeyJwt.algorithm', /RS256.*EdDSA/);
  });
});

describe('client_secret_jwt config errors', () => {
  it('refuses a secret shorter than the HS256 output (32 bytes)', async () => {
    const file = configWith('clientSecret: { secret: s, method: client_secret_jwt }', { s: 'short-secret-1234' });
    await assertProblem(
      file,
      'connections.c.clientSecret.secret',
      /HS256 needs a client secret of at least 32 bytes \(RFC 7518 §3\.2\); this one has 17/,
      'short-secret',
    );
  });

  it('refuses a 40-byte secret for HS512 (64 bytes)', async () => {
    const file = configWith('clientSecret: { secret: s, method: client_secret_jwt, algorithm: HS512 }', { s: 'x'.repeat(40) });
    await assertProblem(file, 'connections.c.clientSecret.secret', /HS512 needs a client secret of at least 64 bytes/);
  });

  it('refuses algorithm on a method that does not sign', async () => {
    const file = configWith('clientSecret: { secret: s, method: client_secret_post, algorithm: HS256 }', { s: 'x'.repeat(40) });
    await assertProblem(file, 'connections.c.clientSecret.algorithm', /client_secret_jwt only/);
  });
});

describe('validate command', () => {
  it('exits 1 and prints file:line:column and the key path of a mismatched key and algorithm', async () => {
    const file = configWith('privateKeyJwt: { secret: key.pem, algorithm: ES256 }', { 'key.pem': encodeKey(rsa.privateKey, 'pkcs8') });
    const result = await run(process.execPath, ['dist/cli.js', 'validate', '--config', file]).then(
      () => assert.fail('validate should exit 1'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /gateway\.yaml:\d+:\d+: connections\.c\.privateKeyJwt\.algorithm: ES256 cannot be used with this RSA key/);
    assert.equal(result.stderr.includes('PRIVATE KEY'), false);
  });

  it('exits 0 for a valid privateKeyJwt connection that discovers its issuer', async () => {
    const file = configWith(
      'privateKeyJwt: { secret: key.pem, algorithm: ES256, audience: issuer, keyId: k1 }',
      { 'key.pem': encodeKey(p256.privateKey, 'sec1') },
      'issuer: http://127.0.0.1:1',
    );
    const { stdout } = await run(process.execPath, ['dist/cli.js', 'validate', '--config', file]);
    assert.match(stdout, /valid \(0 routes, 1 connections\)/);
  });
});
