// Where a key lives: SHA-1 of the key (class-0 bit cleared), then DEGREE replica points
// spaced evenly around the ring. Each point is stored by the two nodes bracketing it.
import { createHash } from 'node:crypto';
import { Address, RING } from '../address/address.js';

export const DEFAULT_DEGREE = 8;

/** SHA-1 of the key with the class-0 bit cleared: the ring position of point 0. */
function ringBytes(key: Uint8Array): Uint8Array {
  const b = new Uint8Array(createHash('sha1').update(key).digest());
  b[b.length - 1]! &= 0xfe;
  return b;
}

export function ringKey(key: Uint8Array): Address {
  return Address.fromBytes(ringBytes(key));
}

export function replicaPoints(key: Uint8Array, degree = DEFAULT_DEGREE): Address[] {
  const h = ringBytes(key);
  // A power of two up to 256 spaces the points by 2^(160 - log2 degree): point k differs from
  // point 0 only in the top bits of the first byte (k added there, mod 256), so no BigInt
  // arithmetic is needed. The BigInt path below gives the same bytes for these degrees.
  if (degree > 0 && degree <= 256 && (degree & (degree - 1)) === 0) {
    const shift = 8 - Math.log2(degree);
    return Array.from({ length: degree }, (_, k) => {
      const b = k === 0 ? h : h.slice();
      b[0] = (h[0]! + (k << shift)) & 0xff;
      return Address.fromBytes(b);
    });
  }
  const v = Address.fromBytes(h).value;
  const step = RING / BigInt(degree);
  return Array.from({ length: degree }, (_, k) => Address.ringPoint(v + BigInt(k) * step));
}

/** Replicas that must agree for an operation to succeed (5 of 8). */
export function majority(degree: number): number {
  return Math.floor(degree / 2) + 1;
}

/** Which of `key`'s replica points `point` (20 bytes) is, or -1 if it is none of them. */
export function pointIndex(key: Uint8Array, point: Uint8Array, degree = DEFAULT_DEGREE): number {
  const p = Address.fromBytes(point);
  return replicaPoints(key, degree).findIndex((x) => x.equals(p));
}
