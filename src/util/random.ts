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

export const cryptoRandom: RandomSource = {
  bytes: (n) => new Uint8Array(randomBytes(n)),
  float: () => randomBytes(6).readUIntBE(0, 6) / 2 ** 48,
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
