/** The JSON summary of one token request, shared by the `token` command and the admin test button. */
import { GatewayError, TokenError } from '../errors/gateway.js';
import type { TokenResponse } from './endpoint.js';

/** First and last few characters only: enough to tell tokens apart, useless to an attacker. */
function maskToken(token: string): string {
  if (token.length <= 16) return '*'.repeat(token.length);
  return `${token.slice(0, 6)}…${token.slice(-4)} (${token.length} chars)`;
}

/** Where a token straight from the token endpoint comes from: the provider, or the admin's cool-down in front of it. */
export interface UncachedTokens {
  fetchUncached(connection: string, params: Readonly<Record<string, string>>): Promise<TokenResponse>;
}

function summarizeTokenResult(
  connection: string,
  result: { token: TokenResponse; showToken?: boolean } | { error: GatewayError },
  elapsedMs: number,
): Record<string, unknown> {
  const took = Math.round(elapsedMs);
  if ('error' in result) {
    const { error } = result;
    return {
      ok: false,
      connection,
      code: error.code,
      reason: error instanceof TokenError ? error.reason : undefined,
      oauthError: error.oauthError,
      detail: error.detail,
      httpStatus: error instanceof TokenError ? error.endpointStatus : undefined,
      tookMs: took,
    };
  }
  const { token, showToken } = result;
  return {
    ok: true,
    connection,
    tokenType: token.tokenType,
    scope: token.scope ?? null,
    expiresIn: token.expiresIn ?? null,
    expiresAt: token.expiresIn === undefined ? null : new Date(Date.now() + token.expiresIn * 1000).toISOString(),
    accessToken: showToken === true ? token.accessToken : maskToken(token.accessToken),
    tookMs: took,
  };
}

/**
 * One token request straight from the token endpoint, summarised with its time. A failure the
 * gateway understands is a summary too (`ok: false`); anything else is thrown.
 */
export async function testToken(
  tokens: UncachedTokens,
  connection: string,
  params: Readonly<Record<string, string>>,
  showToken = false,
): Promise<{ ok: boolean; summary: Record<string, unknown> }> {
  const started = performance.now();
  try {
    const token = await tokens.fetchUncached(connection, params);
    return { ok: true, summary: summarizeTokenResult(connection, { token, showToken }, performance.now() - started) };
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    return { ok: false, summary: summarizeTokenResult(connection, { error }, performance.now() - started) };
  }
}
