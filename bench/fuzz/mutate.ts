// Mutations of valid encodings and random inputs, the raw material of every fuzz target.
import { TAG_BYTES, TAG_FALSE, TAG_FLOAT64, TAG_INT32, TAG_LIST, TAG_MAP, TAG_NULL, TAG_STRING, TAG_TRUE } from '../../src/wire/value.js';
import { cat, copy } from './bytes.js';
import type { Rng } from './rng.js';

/** Offsets of every u32 length/count field of a value encoding starting at `start` (best effort). */
function lengthFields(b: Uint8Array, start: number): number[] {
  const out: number[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let pos = start;
  const walk = (depth: number): void => {
    if (pos >= b.length || depth > 40) throw new Error('end');
    const tag = b[pos++]!;
    switch (tag) {
      case TAG_NULL: case TAG_FALSE: case TAG_TRUE: return;
      case TAG_INT32: pos += 4; return;
      case TAG_FLOAT64: pos += 8; return;
      case TAG_STRING: case TAG_BYTES: out.push(pos); pos += 4 + dv.getUint32(pos); return;
      case TAG_LIST: { out.push(pos); const n = dv.getUint32(pos); pos += 4; for (let i = 0; i < n; i++) walk(depth + 1); return; }
      case TAG_MAP: {
        out.push(pos); const n = dv.getUint32(pos); pos += 4;
        for (let i = 0; i < n; i++) { out.push(pos); pos += 4 + dv.getUint32(pos); walk(depth + 1); }
        return;
      }
      default: throw new Error('tag');
    }
  };
  try { walk(0); } catch { /* a partial list is fine */ }
  return out;
}

const HUGE = [0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff, 0x10000, 0x10001, 0x1000000, 0x2000, 0x2001];
const INTERESTING = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x11, 0x1f, 0x20, 0x7f, 0x80, 0xfe, 0xff];

/**
 * One to three random mutations of a valid encoding: bit flips, truncation, insertion,
 * deletion, a length field (or any u32/u16) set to a huge or off-by-some value, an
 * interesting byte, a duplicated slice.
 */
export function mutate(r: Rng, src: Uint8Array, bodyStart: number | null): Uint8Array {
  let b: Uint8Array = copy(src);
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    const op = r.int(10);
    if (op <= 1 && b.length > 0) {
      const flips = 1 + r.int(4);
      for (let i = 0; i < flips; i++) b[r.int(b.length)]! ^= 1 << r.int(8);
    } else if (op === 2) {
      b = b.slice(0, r.int(b.length + 1));
    } else if (op === 3) {
      const at = r.int(b.length + 1);
      b = cat(b.subarray(0, at), r.bytes(1 + r.int(8)), b.subarray(at));
    } else if (op === 4 && b.length > 0) {
      const at = r.int(b.length);
      b = cat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(8))));
    } else if (op <= 6) {
      const fields = bodyStart === null ? [] : lengthFields(b, bodyStart);
      const at = fields.length > 0 ? r.pick(fields) : r.int(Math.max(1, b.length - 3));
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      if (r.int(3) === 0 && at + 2 <= b.length) {
        dv.setUint16(at, r.int(2) === 0 ? r.pick([0xffff, 0x2000, 0x2001, 0x1fff, 0x8000, 0]) : (dv.getUint16(at) + r.int(9) - 4) & 0xffff);
      } else if (at + 4 <= b.length) {
        dv.setUint32(at, r.int(2) === 0 ? r.pick(HUGE) : (dv.getUint32(at) + r.int(9) - 4) >>> 0);
      }
    } else if (op === 7 && b.length > 0) {
      b[r.int(Math.min(b.length, r.int(2) === 0 ? 4 : b.length))] = r.pick(INTERESTING);
    } else if (op === 8 && b.length > 1) {
      const at = r.int(b.length), len = 1 + r.int(Math.min(16, b.length - at));
      b = cat(b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len));
    } else if (b.length > 0) {
      // Splice: keep a valid header, replace the tail with random bytes.
      const at = r.int(b.length);
      b = cat(b.subarray(0, at), r.bytes(r.int(b.length - at + 8)));
    }
  }
  return b;
}

/** Random inputs: mostly short; some behind a valid header; some from a value-tag alphabet. */
export function randomInput(r: Rng, prefixes: readonly Uint8Array[]): Uint8Array {
  const len = r.next() < 0.9 ? r.int(64) : r.int(2048);
  const body = r.bytes(len);
  const mode = r.int(3);
  if (mode === 0 && prefixes.length > 0) return cat(r.pick(prefixes), body);
  if (mode === 1) {
    for (let j = 0; j < body.length; j++) if (r.int(2) === 0) body[j] = r.int(TAG_MAP + 2); // every tag and one beyond
    return prefixes.length > 0 && r.int(2) === 0 ? cat(r.pick(prefixes), body) : body;
  }
  return body;
}
