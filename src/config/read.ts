/**
 * Reading the config file and secret files: off the event loop (fs/promises), within a time limit,
 * and from regular files only. A FIFO, a device or a socket would block a read until a writer
 * appears (or never end), so it is refused before any read starts.
 */
import { constants, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';

/** How long one file may take to read (a secret on a slow network mount must not stall a reload). */
export const FILE_READ_TIMEOUT_MS = 5_000;

/** Why a file could not be read: a short reason that names no content (an errno code or a sentence). */
export class FileReadProblem extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'FileReadProblem';
  }
}

function kindOf(info: Stats): string {
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isSocket()) return 'a socket';
  if (info.isDirectory()) return 'a directory';
  return 'not a regular file';
}

async function readOnce(path: string): Promise<string> {
  // stat() first: opening a FIFO for reading without O_NONBLOCK waits for a writer.
  const before = await stat(path);
  if (!before.isFile()) throw new FileReadProblem(`not a regular file (${kindOf(before)})`);
  // O_NONBLOCK as well: a FIFO swapped in between stat and open must not block the open either.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const opened = await handle.stat();
    if (!opened.isFile()) throw new FileReadProblem(`not a regular file (${kindOf(opened)})`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * The text of a regular file, or a FileReadProblem. A read that outlives `timeoutMs` is given up
 * (the thread-pool read goes on and closes its own handle when it ends; nobody waits for it).
 */
export async function readRegularFile(path: string, timeoutMs = FILE_READ_TIMEOUT_MS): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_done, fail) => {
    timer = setTimeout(() => fail(new FileReadProblem(`not read within ${timeoutMs} ms`)), timeoutMs);
  });
  const reading = readOnce(path).catch((error: unknown) => {
    if (error instanceof FileReadProblem) throw error;
    throw new FileReadProblem((error as NodeJS.ErrnoException).code ?? (error as Error).message);
  });
  try {
    return await Promise.race([reading, timeout]);
  } finally {
    clearTimeout(timer);
    // The loser must not surface as an unhandled rejection.
    reading.catch(() => undefined);
  }
}
