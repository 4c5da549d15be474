// Byte helpers shared by the fuzz targets and the receive-path harness.

export const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
export const u8 = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
/** A real copy (Buffer#slice would return a view of the same memory). */
export const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);
export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;
export const EMPTY = new Uint8Array(0);
export const utf8 = new TextEncoder();
