/**
 * The upstream's final head as the caller gets it: its header lines after hop-by-hop hygiene
 * (headers.ts), its reason phrase, and whether a body may follow it.
 */
import type { ServerResponse } from 'node:http';
import { callerResponseHeaders } from './headers.js';

function withoutContentLength(headers: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() !== 'content-length') out.push(headers[i]!, headers[i + 1]!);
  return out;
}

/**
 * Writes the head on `res`, on which nothing was set before: writeHead takes the list as it is,
 * no header copied twice. Throws what Node throws for a head it will not write (a value with a
 * character no header may hold): the upstream is then broken, not the gateway.
 */
export function writeAnswerHead(res: ServerResponse, status: number, reason: string, rawHeaders: string[], requestId: string): void {
  const list = callerResponseHeaders(rawHeaders, requestId);
  // RFC 9112 §4: the upstream's reason phrase goes on as it came (nginx does the same); an empty one
  // becomes Node's standard phrase for the status.
  if (reason !== '') res.statusMessage = reason;
  // RFC 9110 §8.6: a 204 carries no Content-Length (a 304's describes the representation it stands for).
  res.writeHead(status, status === 204 ? withoutContentLength(list) : list);
}

/**
 * A 204 or 304 ends at its head (RFC 9110 §15.3.5, §15.4.5), and so it does for the client's parser:
 * bytes an upstream sends after it are garbage on that socket, never part of this answer. So does
 * an answer to HEAD (§9.3.2).
 */
export function endsAtHead(status: number, method: string): boolean {
  return status === 204 || status === 304 || method === 'HEAD';
}
