// Packet buffers on the hot path: a VPN super-packet is 64 KB, and zero-filling what is
// written in full right after costs as much as the copy itself.
import { transientBytes } from './gc-pacer.js';

/**
 * n bytes, not zero-filled: the caller writes every one. A plain Uint8Array (not a Buffer),
 * so that slice() copies, as code handling packets expects.
 */
export function uninitialized(n: number): Uint8Array {
  transientBytes(n);
  const b = Buffer.allocUnsafe(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}
