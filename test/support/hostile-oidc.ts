/**
 * An OpenID provider that signs one thing wrong on purpose, for the relying-party checks a correct
 * provider never gives a reason to run: an ID token for another audience, one signed with a key
 * that is not in its JWKS, one already expired, one from another issuer. Everything else is as a
 * provider does it (discovery, JWKS, the code flow with state, nonce and PKCE echoed back), and
 * `fault: 'none'` signs people in, so each refusal is caused by its one fault.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export type IdTokenFault = 'none' | 'wrong-audience' | 'unknown-key' | 'expired' | 'wrong-issuer';

export interface HostileProvider {
  issuer: string;
  fault: IdTokenFault;
  close(): Promise<void>;
}

export async function startHostileProvider(clientId: string, claims: Record<string, unknown>): Promise<HostileProvider> {
  const signing = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(signing.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { nonce: string; challenge: string }>();
  const server = http.createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const result: HostileProvider = {
    issuer,
    fault: 'none',
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
  const json = (res: http.ServerResponse, body: unknown) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
      });
    }
    if (url.pathname === '/jwks') return json(res, { keys: [jwk] });
    if (url.pathname === '/authorize') {
      const code = createHash('sha256').update(url.search).digest('base64url');
      codes.set(code, { nonce: url.searchParams.get('nonce') ?? '', challenge: url.searchParams.get('code_challenge') ?? '' });
      const back = new URL(url.searchParams.get('redirect_uri') ?? '');
      back.search = new URLSearchParams({ code, state: url.searchParams.get('state') ?? '', iss: issuer }).toString();
      return void res.writeHead(302, { location: back.href }).end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      void (async () => {
        let body = '';
        for await (const chunk of req) body += String(chunk);
        const form = new URLSearchParams(body);
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        if (grant === undefined || createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
          return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
        }
        const now = Math.floor(Date.now() / 1000);
        const fault = result.fault;
        const idToken = await new SignJWT({ ...claims, nonce: grant.nonce })
          .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
          .setIssuer(fault === 'wrong-issuer' ? 'http://127.0.0.1:1' : issuer)
          .setAudience(fault === 'wrong-audience' ? 'another-client' : clientId)
          .setIssuedAt(fault === 'expired' ? now - 7200 : now)
          .setExpirationTime(fault === 'expired' ? now - 3600 : now + 300)
          .sign(fault === 'unknown-key' ? other.privateKey : signing.privateKey);
        json(res, { access_token: 'hostile-access-token', token_type: 'Bearer', expires_in: 300, id_token: idToken });
      })();
      return;
    }
    res.writeHead(404).end();
  });
  return result;
}
