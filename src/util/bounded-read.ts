// Reading input that has a size limit without reading more than the limit: a file, a
// device (/dev/zero), a named pipe or '-' (stdin) is read until EOF or maxBytes + 1 bytes,
// whichever comes first, so an endless or huge input is refused after a bounded read.
import { open } from 'node:fs/promises';

export class TooLargeError extends Error {
  override name = 'TooLargeError';
  constructor(readonly source: string, readonly maxBytes: number) {
    super(`${source === '-' ? 'standard input' : source} is larger than ${maxBytes} bytes`);
  }
}

const CHUNK = 64 * 1024;

/** The whole input if it has at most maxBytes bytes; otherwise TooLargeError after reading maxBytes + 1. */
export async function readBounded(pathOrDash: string, maxBytes: number): Promise<Buffer> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be a whole number >= 0, got ${maxBytes}`);
  const data = pathOrDash === '-' ? await readStream(process.stdin, maxBytes) : await readPath(pathOrDash, maxBytes);
  if (data.length > maxBytes) throw new TooLargeError(pathOrDash, maxBytes);
  return data;
}

async function readPath(path: string, maxBytes: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(maxBytes + 1, CHUNK));
    const chunks: Buffer[] = [];
    let total = 0;
    while (total <= maxBytes) {
      const want = Math.min(buf.length, maxBytes + 1 - total);
      const { bytesRead } = await fh.read(buf, 0, want, null);
      if (bytesRead === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
      total += bytesRead;
    }
    return Buffer.concat(chunks, total);
  } finally {
    await fh.close();
  }
}

/** At most maxBytes + 1 bytes of a stream; stops reading (and destroys the stream) once past the limit. */
async function readStream(stream: NodeJS.ReadableStream, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of stream) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    chunks.push(b);
    total += b.length;
    if (total > maxBytes) break; // leaving the loop destroys the stream: nothing more is read
  }
  return Buffer.concat(chunks, total).subarray(0, Math.min(total, maxBytes + 1));
}
