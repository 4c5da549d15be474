// Where a key lives: SHA-1 of the key (class-0 bit cleared), then DEGREE replica points
// spaced evenly around the ring. Each point is stored by the two nodes bracketing it.
import { createHash } from 'node:crypto';
import { Address, RING } from '../address/address.js';

export const DEFAULT_DEGREE = 8;

export function ringKey(key: Uint8Array): Address {
  return Address.ringPoint(BigInt('0x' + createHash('sha1').update(key).digest('hex')));
}

export function replicaPoints(key: Uint8Array, degree = DEFAULT_DEGREE): Address[] {
  const h = ringKey(key).value;
  const step = RING / BigInt(degree);
  return Array.from({ length: degree }, (_, k) => Address.ringPoint(h + BigInt(k) * step));
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
