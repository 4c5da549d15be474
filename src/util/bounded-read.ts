// Reading input of unknown size (a config, a value for bput) without trusting it to be small:
// at most maxBytes + 1 bytes are ever read, so /dev/zero, an endless pipe or a huge file fails
// at once with TooLargeError instead of filling memory.
import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

const CHUNK = 64 * 1024;

export class TooLargeError extends Error {
  override name = 'TooLargeError';
  constructor(readonly source: string, readonly maxBytes: number) {
    super(`${source === '-' ? 'standard input' : source} is larger than ${maxBytes} bytes`);
  }
}

function checkLimit(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be a whole number ≥ 0, not ${maxBytes}`);
}

/** The whole content of a file (or of standard input for '-'), or TooLargeError past maxBytes. */
export async function readBounded(pathOrDash: string, maxBytes: number): Promise<Buffer> {
  checkLimit(maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  const add = (b: Buffer): boolean => {
    chunks.push(b);
    total += b.length;
    return total > maxBytes;
  };
  if (pathOrDash === '-') {
    const stdin = process.stdin;
    try {
      for await (const c of stdin) {
        const b = Buffer.isBuffer(c) ? c : Buffer.from(String(c));
        if (add(b.subarray(0, maxBytes + 1 - total))) throw new TooLargeError(pathOrDash, maxBytes);
      }
    } finally {
      stdin.pause();
    }
    return Buffer.concat(chunks, total);
  }
  const fh = await open(pathOrDash, 'r');
  try {
    for (;;) {
      const want = Math.min(CHUNK, maxBytes + 1 - total);
      const { bytesRead, buffer } = await fh.read(Buffer.allocUnsafe(want), 0, want, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total);
      if (add(buffer.subarray(0, bytesRead))) throw new TooLargeError(pathOrDash, maxBytes);
    }
  } finally {
    await fh.close();
  }
}

/** readBounded for synchronous callers (config loading); files, devices and FIFOs, not '-'. */
export function readBoundedSync(path: string, maxBytes: number): Buffer {
  checkLimit(maxBytes);
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(CHUNK, maxBytes + 1 - total);
      const b = Buffer.allocUnsafe(want);
      const n = readSync(fd, b, 0, want, null);
      if (n === 0) return Buffer.concat(chunks, total);
      chunks.push(b.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new TooLargeError(path, maxBytes);
    }
  } finally {
    closeSync(fd);
  }
}
