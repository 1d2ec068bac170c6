/**
 * Certificates for the TLS tests, made with the openssl command line once per test process: a CA
 * and a server certificate it signed (127.0.0.1 and localhost), a client CA and a client
 * certificate it signed, a self-signed client certificate, and an unrelated CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestPki {
  /** Signs `server`. */
  ca: KeyPair;
  /** For 127.0.0.1 and localhost, signed by `ca`. */
  server: KeyPair;
  /** Signs `client`. */
  clientCa: KeyPair;
  /** Subject CN=tokengate-client, signed by `clientCa`. */
  client: KeyPair;
  /** Subject CN=self-signed-client, its own issuer. */
  selfSigned: KeyPair;
  /** A CA that signed nothing here: trusting it alone must fail. */
  otherCa: KeyPair;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = ['-days', '2'];

let cached: TestPki | undefined;
const made = (): TestPki => (cached ??= makePki());
/**
 * Runs openssl on the first property read, not on the call: a file can hold it at module level and
 * still load without openssl, its suites skipped by requireProgram('openssl', 'openssl').
 */
const lazy: TestPki = {
  get ca() {
    return made().ca;
  },
  get server() {
    return made().server;
  },
  get clientCa() {
    return made().clientCa;
  },
  get client() {
    return made().client;
  },
  get selfSigned() {
    return made().selfSigned;
  },
  get otherCa() {
    return made().otherCa;
  },
};

export function testPki(): TestPki {
  return lazy;
}

function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'tokengate-pki-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const read = (name: string): KeyPair => ({
    cert: readFileSync(file(`${name}.crt`), 'utf8'),
    key: readFileSync(file(`${name}.key`), 'utf8'),
  });

  const selfSigned = (name: string, subject: string, extensions: string[]) => {
    openssl(
      'req',
      '-x509',
      ...EC_KEY,
      ...DAYS,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-subj',
      subject,
      ...extensions.flatMap((e) => ['-addext', e]),
    );
    return read(name);
  };
  const signed = (name: string, issuer: string, subject: string, extensions: string) => {
    writeFileSync(file(`${name}.ext`), extensions);
    openssl('req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${issuer}.crt`,
      '-CAkey',
      `${issuer}.key`,
      '-set_serial',
      String(Date.now()),
      ...DAYS,
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
    return read(name);
  };
  const caExtensions = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];

  const ca = selfSigned('ca', '/CN=tokengate test CA', caExtensions);
  const server = signed(
    'server',
    'ca',
    '/CN=localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  const clientCa = selfSigned('client-ca', '/CN=tokengate test client CA', caExtensions);
  const client = signed('client', 'client-ca', '/CN=tokengate-client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  const selfSignedClient = selfSigned('self-signed', '/CN=self-signed-client', ['extendedKeyUsage=clientAuth']);
  const otherCa = selfSigned('other-ca', '/CN=unrelated test CA', caExtensions);
  return { ca, server, clientCa, client, selfSigned: selfSignedClient, otherCa };
}
