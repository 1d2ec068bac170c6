/**
 * The keys of a managed key set and the document a fleet shares them in: private keys as JWKs
 * (the store encrypts the whole document), each named by its RFC 7638 thumbprint.
 */
import { createPrivateKey, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, generateKeyPair, type JWK } from 'jose';
import type { ManagedKeySettings } from '../../config/types.js';

/** Key `n` of a set's schedule (schedule.ts): its private key and the public JWK the JWKS publishes. */
export interface RingKey {
  readonly n: number;
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
  readonly createdAt: number;
}

/** A key set as the fleet shares it: the schedule's epoch and the keys. */
export interface KeySet {
  readonly epoch: number;
  readonly keys: Map<number, RingKey>;
}

interface KeySetDocument {
  epoch: number;
  keys: Array<{ n: number; createdAt: number; jwk: JWK }>;
}

export async function newKey(n: number, algorithm: ManagedKeySettings['algorithm'], now: number): Promise<RingKey> {
  const pair = await generateKeyPair(algorithm, { extractable: true });
  return ringKey(n, KeyObject.from(pair.privateKey), now, algorithm);
}

async function ringKey(n: number, privateKey: KeyObject, createdAt: number, algorithm: string): Promise<RingKey> {
  const publicJwk = privateKey.export({ format: 'jwk' }) as JWK;
  for (const field of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) delete publicJwk[field];
  // RFC 7638: the thumbprint names the key, the same for every replica that holds it.
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return { n, kid, privateKey, publicJwk: { ...publicJwk, kid, alg: algorithm, use: 'sig' }, createdAt };
}

export function writeKeySet(epoch: number, keys: Map<number, RingKey>): string {
  const document: KeySetDocument = {
    epoch,
    keys: [...keys.values()].map((key) => ({ n: key.n, createdAt: key.createdAt, jwk: key.privateKey.export({ format: 'jwk' }) })),
  };
  return JSON.stringify(document);
}

/**
 * The fleet's document read back (what Redis holds is decrypted, but still checked: it is input);
 * undefined when it is unreadable.
 */
export async function readKeySet(text: string, algorithm: string): Promise<KeySet | undefined> {
  let document: KeySetDocument;
  try {
    document = JSON.parse(text) as KeySetDocument;
    if (typeof document.epoch !== 'number' || !Array.isArray(document.keys)) return undefined;
  } catch {
    return undefined;
  }
  const keys = new Map<number, RingKey>();
  for (const entry of document.keys) {
    try {
      keys.set(entry.n, await ringKey(entry.n, createPrivateKey({ key: entry.jwk as never, format: 'jwk' }), entry.createdAt, algorithm));
    } catch {
      // A key that does not import is left out; the schedule makes a new one when it is due.
    }
  }
  return { epoch: document.epoch, keys };
}
