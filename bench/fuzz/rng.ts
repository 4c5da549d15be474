// The fuzzer's one source of randomness: a seeded PRNG and independent named sub-streams.

export interface Rng {
  next(): number;
  int(n: number): number;
  bytes(n: number): Uint8Array;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32: small, fast, reproducible. */
export function prng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    bytes(n) { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = int(256); return b; },
    pick: (xs) => xs[int(xs.length)]!,
    chance: (p) => next() < p,
  };
}

/** Derives an independent seed for a named sub-stream. */
export function subSeed(seed: number, name: string): number {
  let h = seed >>> 0 ^ 0x9e3779b9;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h >>> 0;
}
