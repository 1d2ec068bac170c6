/**
 * The connections of a config built: each one's client authentication and DPoP signer, and the
 * console's single sign-on client, which authenticates to its provider exactly as a connection
 * does. Part of building the config (`tokengate validate` runs it), so a credential the runtime
 * could not use is a config problem at its key path, found before anything is swapped in.
 */
import type { CheckedConfig, ClientAuth, Config, Connection, ConnectionSettings, DpopProofSigner } from '../config/types.js';
import type { Report } from '../config/report.js';
import { clientTlsOptions } from '../config/tls.js';
import { clientAssertionFile } from '../tokens/assertion-file.js';
import {
  clientSecretBasic,
  clientSecretJwt,
  clientSecretPost,
  CredentialProblem,
  managedKeyJwt,
  privateKeyJwt,
  tlsClientAuth,
  withPrevious,
} from '../tokens/client-auth.js';
import type { ManagedKeys } from '../tokens/managed-keys.js';
import { TokenError } from '../errors/gateway.js';
import type { Secret } from '../config/secret.js';
import { DpopKeyProblem, loadDpopKey } from '../tokens/dpop/key.js';
import { DpopSigner } from '../tokens/dpop/proof.js';

/**
 * Every connection with its client authentication and DPoP signer; a connection whose credentials
 * cannot be used is reported and left out (the reported problem fails the build).
 * `managedKeys` are the running gateway's (privateKeyJwt.managed); without them such a connection cannot sign.
 */
export function buildConnections(checked: CheckedConfig, report: Report, managedKeys: ManagedKeys | undefined): Map<string, Connection> {
  const connections = new Map<string, Connection>();
  for (const settings of checked.connections.values()) {
    const auth = clientAuth(settings, report, managedKeys);
    const dpopSigner = dpop(settings, report);
    if (auth === undefined || dpopSigner === null) continue;
    try {
      // The token client's socket pool is built from the same options (config/tls.ts outboundAgent).
      if (settings.tls !== undefined || auth.tlsCredentials !== undefined) clientTlsOptions(settings.tls, auth.tlsCredentials);
    } catch (error) {
      report(['connections', settings.key, 'tls'], `cannot build the TLS context: ${(error as Error).message}`);
    }
    connections.set(settings.key, Object.freeze({ ...settings, auth, dpopSigner }));
  }
  return connections;
}

/**
 * The connection's DPoP signer (undefined without `dpop`), its key read and checked against the
 * algorithm here so that `validate` reports a mismatch at `connections.KEY.dpop.algorithm`; null
 * after reporting a problem.
 */
function dpop(settings: ConnectionSettings, report: Report): DpopProofSigner | undefined | null {
  if (settings.dpop === undefined) return undefined;
  try {
    return new DpopSigner(loadDpopKey({ connection: settings.key, secret: settings.dpop.key, algorithm: settings.dpop.algorithm }));
  } catch (error) {
    if (!(error instanceof DpopKeyProblem)) throw error;
    report(['connections', settings.key, 'dpop', error.field], error.message);
    return null;
  }
}

/** The admin settings with the single sign-on client's authentication (same strategies, same checks as a connection). */
export function buildAdminSignIn(admin: Config['admin'], report: Report): Config['admin'] {
  const oidc = admin.auth?.oidc;
  if (admin.auth === undefined || oidc === undefined) return admin;
  const auth = clientAuth({ key: '', clientId: oidc.clientId, credentials: oidc.credentials }, report, undefined, [
    'admin',
    'auth',
    'oidc',
  ]);
  return Object.freeze({ ...admin, auth: Object.freeze({ ...admin.auth, oidc: Object.freeze({ ...oidc, clientAuth: auth }) }) });
}

/**
 * The client-authentication strategy of a connection (or of the single sign-on client, whose
 * problems are reported under `keyPath`); a credential the strategy refuses is reported at its field.
 */
function clientAuth(
  settings: Pick<ConnectionSettings, 'key' | 'clientId' | 'credentials'>,
  report: Report,
  managedKeys: ManagedKeys | undefined,
  keyPath: readonly PropertyKey[] = ['connections', settings.key],
): ClientAuth | undefined {
  const { clientId, credentials } = settings;
  try {
    switch (credentials.kind) {
      case 'clientSecret': {
        const { method, algorithm, previous } = credentials;
        const build = (secret: Secret) =>
          method === 'client_secret_basic'
            ? clientSecretBasic(clientId, secret)
            : method === 'client_secret_post'
              ? clientSecretPost(clientId, secret)
              : clientSecretJwt(clientId, secret, algorithm, 'token-endpoint');
        const current = build(credentials.secret);
        return previous === undefined ? current : withPrevious(current, () => build(previous));
      }
      case 'clientAssertion':
        return clientAssertionFile({ clientId, file: credentials.file, configured: credentials.configured, type: credentials.type });
      case 'managedKeyJwt':
        return managedKeyJwt(clientId, credentials.audience, () =>
          managedKeys === undefined
            ? Promise.reject(
                new TokenError('TOKEN_ENDPOINT_UNAVAILABLE', 'credentials_unavailable', {
                  detail: 'managed keys are made and published by a running gateway (tokengate serve)',
                  retryAfter: 1,
                }),
              )
            : managedKeys.signingKey(settings.key),
        );
      case 'tlsClientAuth':
        return tlsClientAuth({ clientId, method: credentials.method, credentials: credentials.credentials });
      case 'privateKeyJwt': {
        const pkj = credentials.settings;
        return privateKeyJwt({
          clientId,
          key: credentials.key,
          format: pkj.format,
          keyId: pkj.keyId,
          algorithm: pkj.algorithm,
          audience: pkj.audience,
          certificate: credentials.certificate,
          thumbprint: pkj.thumbprint,
        });
      }
    }
  } catch (error) {
    if (!(error instanceof CredentialProblem)) throw error;
    const block = credentials.kind === 'managedKeyJwt' ? 'privateKeyJwt' : credentials.kind;
    report([...keyPath, block, error.field], error.message);
    return undefined;
  }
}
