/**
 * A key set's schedule, as managed-keys.ts describes it: with epoch E, R = rotateEvery and
 * O = overlap, key n is published from E + n·R − O (key 0 from E), signs during [E + n·R, E + (n+1)·R)
 * and is retired at E + (n+1)·R + O. Pure arithmetic on times (ms since epoch).
 */
import type { ManagedKeySettings } from '../../config/types.js';

export class KeySchedule {
  readonly epoch: number;
  readonly #r: number;
  readonly #o: number;

  constructor(epoch: number, settings: Pick<ManagedKeySettings, 'rotateEveryMs' | 'overlapMs'>) {
    this.epoch = epoch;
    this.#r = settings.rotateEveryMs;
    this.#o = settings.overlapMs;
  }

  /** The key that signs at `now`. */
  signingIndex(now: number): number {
    return Math.max(0, Math.floor((now - this.epoch) / this.#r));
  }

  publishAt(n: number): number {
    return n === 0 ? this.epoch : this.epoch + n * this.#r - this.#o;
  }

  /** When key n starts signing (never before it is published). */
  signsFrom(n: number): number {
    return Math.max(this.publishAt(n), this.epoch + n * this.#r);
  }

  retireAt(n: number): number {
    return this.epoch + (n + 1) * this.#r + this.#o;
  }

  /** The keys wanted at `now`: from the oldest not yet retired to the newest already published. */
  wanted(now: number): number[] {
    const first = Math.max(0, Math.floor((now - this.epoch - this.#o) / this.#r));
    const last = Math.max(this.signingIndex(now), Math.floor((now - this.epoch + this.#o) / this.#r));
    const out: number[] = [];
    for (let n = first; n <= last; n++) out.push(n);
    return out;
  }

  /** The next moment the schedule changes something after `now`: a key to publish, to start signing or to retire. */
  nextChange(now: number): number {
    const wanted = this.wanted(now);
    return Math.min(
      this.publishAt(wanted[wanted.length - 1]! + 1),
      this.epoch + (this.signingIndex(now) + 1) * this.#r,
      this.retireAt(wanted[0]!),
    );
  }
}
