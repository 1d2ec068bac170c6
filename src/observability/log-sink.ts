/**
 * Where log lines go on their way to stdout. Lines are encoded into 64 KiB chunks as they come,
 * and a full chunk (or whatever the flush timer finds) is written by one `writev` on libuv's
 * thread pool, so that a reader that is slow or stalled never blocks a request. Under load this
 * is a few dozen writes a second instead of one per line or per 4 KiB: each write wakes a pool
 * thread, and on a busy core those wake-ups cost more than the lines themselves.
 */
import { writeSync, writev } from 'node:fs';

const CHUNK_BYTES = 64 * 1024;
/** The most a line can take in UTF-8 for each UTF-16 unit of the string. */
const MAX_BYTES_PER_UNIT = 3;
/** How long to wait for a full non-blocking descriptor (EAGAIN) before trying again. */
const RETRY_MS = 10;
/** At exit, a full non-blocking descriptor is waited for this many times RETRY_MS at most (5 s). */
const EXIT_ATTEMPTS = 500;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export interface LineSinkOptions {
  readonly fd: number;
  /** A line may wait this long for its chunk to fill (Envoy flushes access logs every second). */
  readonly flushIntervalMs: number;
  /** Held at most, written or waiting; lines beyond it are dropped, and counted. */
  readonly maxBufferedBytes: number;
  /** The line that reports dropped lines once there is room again. */
  readonly dropNotice: (dropped: number) => string;
}

export class LineSink {
  readonly #options: LineSinkOptions;
  #chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  #used = 0;
  /** Full chunks, in order, waiting for the write in flight to finish. */
  #queue: Buffer[] = [];
  /** Bytes in #queue, in flight and in #chunk. */
  #held = 0;
  #writing = false;
  /** The descriptor failed for good (EPIPE, EBADF): lines are dropped from then on. */
  #broken = false;
  /** Lines dropped since the last notice of it. */
  #unreported = 0;
  #dropped = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(options: LineSinkOptions) {
    this.#options = options;
    this.#timer = setInterval(() => this.flush(), options.flushIntervalMs).unref();
    process.once('exit', () => this.flushSync());
  }

  /** Lines dropped since the process started, because the reader did not keep up or went away. */
  get dropped(): number {
    return this.#dropped;
  }

  write(line: string): boolean {
    if (this.#broken || this.#held + line.length > this.#options.maxBufferedBytes) {
      this.#dropped++;
      this.#unreported++;
      return false;
    }
    if (this.#unreported > 0) {
      this.#append(this.#options.dropNotice(this.#unreported));
      this.#unreported = 0;
    }
    this.#append(line);
    if (this.#queue.length > 0 && !this.#writing) this.flush();
    return true;
  }

  /** Starts writing everything held, unless a write is in flight: its completion goes on with the rest. */
  flush(): void {
    if (this.#writing || this.#broken) return;
    this.#seal();
    if (this.#queue.length === 0) return;
    const buffers = this.#queue;
    this.#queue = [];
    this.#writing = true;
    writev(this.#options.fd, buffers, (error, written) => this.#written(error, written, buffers));
  }

  /** At exit: what is not in flight, written synchronously. A write still in flight is the pool's. */
  flushSync(): void {
    clearInterval(this.#timer);
    this.#seal();
    for (let attempt = 0; this.#queue.length > 0 && !this.#broken && attempt < EXIT_ATTEMPTS;) {
      try {
        this.#consume(writeSync(this.#options.fd, this.#queue[0]!));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') this.#break();
        else if (++attempt < EXIT_ATTEMPTS) Atomics.wait(sleeper, 0, 0, RETRY_MS);
      }
    }
  }

  #append(line: string): void {
    if (line.length * MAX_BYTES_PER_UNIT > CHUNK_BYTES - this.#used) {
      if (Buffer.byteLength(line) > CHUNK_BYTES - this.#used) this.#seal();
      if (line.length * MAX_BYTES_PER_UNIT > CHUNK_BYTES) {
        const encoded = Buffer.from(line);
        this.#queue.push(encoded);
        this.#held += encoded.length;
        return;
      }
    }
    const bytes = this.#chunk.write(line, this.#used);
    this.#used += bytes;
    this.#held += bytes;
  }

  /** Moves the chunk being filled to the queue. */
  #seal(): void {
    if (this.#used === 0) return;
    this.#queue.push(this.#chunk.subarray(0, this.#used));
    this.#chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    this.#used = 0;
  }

  #written(error: NodeJS.ErrnoException | null, written: number, buffers: Buffer[]): void {
    this.#writing = false;
    if (error !== null && error.code !== 'EAGAIN') return this.#break();
    this.#queue.unshift(...buffers);
    this.#consume(error === null ? written : 0);
    if (this.#queue.length === 0) return;
    // A full non-blocking pipe: try again shortly rather than spin on the pool. The timer holds
    // the process open, as a write in flight does, so that lines are not left behind at exit.
    if (error !== null) setTimeout(() => this.flush(), RETRY_MS);
    else this.flush();
  }

  /** Takes `bytes` written off the front of the queue. */
  #consume(bytes: number): void {
    this.#held -= bytes;
    while (bytes > 0) {
      const first = this.#queue[0]!;
      if (bytes < first.length) {
        this.#queue[0] = first.subarray(bytes);
        return;
      }
      bytes -= first.length;
      this.#queue.shift();
    }
  }

  #break(): void {
    this.#broken = true;
    this.#queue = [];
    this.#used = 0;
    this.#held = 0;
  }
}
