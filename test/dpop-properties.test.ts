/**
 * Text from peers that becomes DPoP behaviour: `DPoP-Nonce` and `WWW-Authenticate` values from the
 * upstream and the token endpoint. Whatever they say, nothing throws, the gateway answers, and no
 * proof carries a nonce outside RFC 9449 §8.1's grammar.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeJwt, EmbeddedJWK, jwtVerify } from 'jose';
import { loadDpopKey } from '../src/tokens/dpop/key.js';
import { dpopChallengeError, NonceStore, nonceFrom } from '../src/tokens/dpop/nonces.js';
import { DpopSigner } from '../src/tokens/dpop/proof.js';
import { startGateway, type TestGateway } from './support/gateway.js';
import { json, startServer, startTokenEndpoint, type TestServer } from './support/servers.js';

/** RFC 9449 §8.1. */
const NQCHARS = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
/** What Node lets a server put in a header value: HTAB, SP-~ and obs-text. */
const headerText = fc.string({
  unit: fc.constantFrom(...'\t !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\u00e9\u00ff'.split('')),
  maxLength: 80,
});
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), headerText);
const token = fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/);
const quoted = fc
  .string({ unit: fc.constantFrom(...'ab c,="\\\t!'.split('')), maxLength: 20 })
  .map((text) => `"${text.replace(/(["\\])/g, '\\$1')}"`);

describe('DPoP peer text, properties', () => {
  it('nonceFrom and dpopChallengeError take any text without throwing; a nonce is always 1*NQCHAR', () => {
    fc.assert(
      fc.property(anyText, anyText, (nonceHeader, challenge) => {
        const nonce = nonceFrom(nonceHeader);
        if (nonce !== undefined) assert.match(nonce, NQCHARS);
        const error = dpopChallengeError(challenge);
        assert.ok(error === undefined || typeof error === 'string');
      }),
      { numRuns: 2000 },
    );
  });

  it("finds the DPoP challenge's error among other challenges and parameters, in any case", () => {
    const param = fc.tuple(token, fc.oneof(token, quoted)).map(([name, value]) => `${name}=${value}`);
    const other = fc
      .tuple(fc.constantFrom('Bearer', 'Basic', 'Negotiate'), fc.array(param, { maxLength: 3 }))
      .map(([scheme, params]) => `${scheme} ${params.join(', ')}`.trim());
    fc.assert(
      fc.property(
        fc.array(other, { maxLength: 2 }),
        fc.array(
          param.filter((p) => !/^error=/i.test(p)),
          { maxLength: 2 },
        ),
        fc.constantFrom('use_dpop_nonce', 'invalid_token', 'invalid_dpop_proof'),
        fc.constantFrom('DPoP', 'dpop', 'DPOP'),
        fc.boolean(),
        (before, params, error, scheme, quote) => {
          const value = quote ? `"${error}"` : error;
          const dpop = `${scheme} ${[...params, `error=${value}`].join(', ')}`;
          assert.equal(dpopChallengeError([...before, dpop].join(', ')), error);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a proof carries exactly the latest well-formed nonce, and always verifies', async () => {
    const signer = new DpopSigner(loadDpopKey({ connection: 'props', secret: undefined, algorithm: undefined }), new NonceStore());
    await fc.assert(
      fc.asyncProperty(fc.array(anyText, { minLength: 1, maxLength: 4 }), async (headers) => {
        let expected = signer.nonces.get('https://as.example');
        for (const header of headers) {
          signer.nonces.remember('https://as.example', header);
          expected = nonceFrom(header) ?? expected;
        }
        const proof = signer.proof('POST', 'https://as.example', '/token');
        const { payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
        assert.equal(payload.nonce, expected);
        if (payload.nonce !== undefined) assert.match(String(payload.nonce), NQCHARS);
      }),
      { numRuns: 300 },
    );
  });
});

describe('DPoP peer text through the gateway', () => {
  let endpoint: TestServer;
  let upstream: TestServer;
  let gw: TestGateway;
  let tokenAnswer: { nonce: string; challenge: string; first: boolean } = { nonce: '', challenge: '', first: false };
  let upstreamAnswer: { status: number; nonce: string; challenge: string } = { status: 200, nonce: '', challenge: '' };

  const send = (res: ServerResponse, status: number, body: unknown, nonce: string, challenge: string) => {
    const headers: Record<string, string> = {};
    if (nonce !== '') headers['dpop-nonce'] = nonce;
    if (challenge !== '') headers['www-authenticate'] = challenge;
    json(res, status, body, headers);
  };

  before(async () => {
    let issued = 0;
    endpoint = await startTokenEndpoint((_req, res) => {
      if (tokenAnswer.first) {
        tokenAnswer.first = false;
        return send(res, 400, { error: 'use_dpop_nonce' }, tokenAnswer.nonce, tokenAnswer.challenge);
      }
      send(res, 200, { access_token: `bound-${++issued}`, token_type: 'DPoP', expires_in: 300 }, tokenAnswer.nonce, '');
    });
    upstream = await startServer((_req, res) => send(res, upstreamAnswer.status, {}, upstreamAnswer.nonce, upstreamAnswer.challenge));
    gw = await startGateway(`
listen: { host: 127.0.0.1 }
logging: { accessLog: off }
secrets:
  client: { value: client-secret }
connections:
  c:
    clientId: gw
    tokenUrl: ${endpoint.url}/token
    clientSecret: { secret: client }
    dpop: {}
routes:
  - name: r
    match: { pathPrefix: /r }
    upstream: ${upstream.url}
    auth: { connection: c }
`);
  });
  after(async () => {
    await gw.stop();
    await upstream.close();
    await endpoint.close();
  });

  let runs = 0;

  it('any DPoP-Nonce / WWW-Authenticate from either server: an answer every time, and every proof well-formed', async () => {
    const challenge = fc.oneof(
      headerText,
      fc
        .tuple(fc.constantFrom('DPoP', 'Bearer', 'dpop'), fc.constantFrom('use_dpop_nonce', 'invalid_token', 'x'), headerText)
        .map(([scheme, error, rest]) => `${scheme} error="${error}", ${rest}`),
    );
    await fc.assert(
      fc.asyncProperty(
        headerText,
        challenge,
        fc.boolean(),
        headerText,
        challenge,
        fc.constantFrom(200, 401, 403),
        async (tn, tc, first, un, uc, status) => {
          tokenAnswer = { nonce: tn.trim(), challenge: tc.trim(), first };
          upstreamAnswer = { status, nonce: un.trim(), challenge: uc.trim() };
          // A token request each run (the token endpoint's answer is part of the property), with params
          // of its own so that no earlier outcome is replayed instead; failures are the point here.
          const fetched = endpoint.received.length;
          await gw.gateway.provider.fetchUncached('c', { run: String(++runs) }).catch(() => undefined);
          assert.ok(endpoint.received.length > fetched, 'the token endpoint was asked');
          const seen = upstream.received.length;
          const response = await fetch(`${gw.url}/r/x?q=1`, { method: 'POST', body: 'small' });
          await response.arrayBuffer();
          assert.ok([200, 401, 403, 502].includes(response.status), String(response.status));
          for (const request of [...endpoint.received, ...upstream.received.slice(seen)]) {
            const proof = String(request.headers.dpop);
            const nonce = decodeJwt(proof).nonce;
            if (nonce !== undefined) assert.ok(typeof nonce === 'string' && NQCHARS.test(nonce), JSON.stringify(nonce));
          }
        },
      ),
      { numRuns: 60 },
    );
    assert.ok(
      gw.logs.every((line) => line.level !== 50 && line.level !== 60),
      'no error logged',
    );
  });
});
