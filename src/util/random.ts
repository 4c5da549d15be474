import { randomBytes, randomInt } from 'node:crypto';

// Injected randomness: addresses and edge ids need a CSPRNG; jitter and shortcut
// targets only need uniform floats. A simulator can pass a seeded source instead.
export interface RandomSource {
  bytes(n: number): Uint8Array;
  /** Uniform in [0, 1). */
  float(): number;
  /** Uniform integer in [0, max). */
  int(max: number): number;
}

/**
 * Small requests are served from a pool of CSPRNG bytes, refilled POOL bytes at a time: one
 * randomBytes call costs a few µs, and a node asks for 4 bytes per UDP edge and 6 per jittered
 * timer (about 3 % of bench:ring's CPU while a ring forms). crypto.randomInt caches the same way.
 * Bytes are zeroed in the pool once handed out. The pool is process-wide, like randomInt's
 * cache: no caller can see or steer what another gets, so nodes sharing it share nothing.
 */
const POOL = 4096;
const MAX_POOLED = 64;
let pool = Buffer.alloc(0);
let at = 0;

/** Offset in `pool` of n fresh bytes (n <= MAX_POOLED). */
function take(n: number): number {
  if (at + n > pool.length) { pool = randomBytes(POOL); at = 0; }
  const i = at;
  at += n;
  return i;
}

export const cryptoRandom: RandomSource = {
  bytes: (n) => {
    if (n > MAX_POOLED) return new Uint8Array(randomBytes(n));
    const i = take(n), out = new Uint8Array(n);
    out.set(pool.subarray(i, i + n));
    pool.fill(0, i, i + n);
    return out;
  },
  float: () => {
    const i = take(6), v = pool.readUIntBE(i, 6);
    pool.fill(0, i, i + 6);
    return v / 2 ** 48;
  },
  int: (max) => randomInt(max),
};

/** Deterministic xorshift-based source for tests and simulation (not for keys). */
export function seededRandom(seed: number): RandomSource {
  let s = (seed >>> 0) || 0x9e3779b9;
  const next = (): number => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
  return {
    bytes(n) { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = next() & 0xff; return b; },
    float: () => next() / 2 ** 32,
    int: (max) => Math.floor((next() / 2 ** 32) * max),
  };
}

/** Shuffled copy (Fisher-Yates). */
export function shuffled<T>(items: readonly T[], rnd: RandomSource): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
