// A decoder target and the loop that runs random and mutated inputs through it. Each call
// must return or throw the module's typed error (WireError; HandshakeError for the Noise
// state machine; Session.open must not throw at all). Decoded results are re-encoded and
// compared where the format is canonical, and anything that authenticates must be
// byte-identical to a genuine packet. Everything random comes from one seeded PRNG
// (mulberry32); only the X25519 ephemerals of the receive path's listeners come from the
// system RNG.
import { WireError } from '../../src/wire/value.js';
import { copy, hex } from './bytes.js';
import { mutate, randomInput } from './mutate.js';
import type { Rng } from './rng.js';

export interface DecoderTarget {
  name: string;
  decode(b: Uint8Array): unknown;
  /** Valid encodings to mutate. */
  pool: Uint8Array[];
  /** Valid headers to put in front of random bytes. */
  prefixes: Uint8Array[];
  /** Where value-encoded length fields start, or null. */
  bodyStart: number | null;
  /** The documented error type(s); anything else thrown is a failure. */
  allowed(e: unknown): boolean;
  /** A documented non-throwing rejection (Session.open returns null); counted with typed errors. */
  rejected?(v: unknown): boolean;
  /** Extra check on a successful decode; throw to report a failure. */
  check?(v: unknown, b: Uint8Array): void;
}

export interface TargetResult {
  name: string;
  calls: number;
  returned: number;
  typedErrors: number;
  failures: number;
  ms: number;
}

export const isWireError = (e: unknown): boolean => e instanceof WireError;
export const MAX_REPORTED = 10;

export function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? ` @ ${e.stack.split('\n').slice(1, 3).map((l) => l.trim()).join(' | ')}` : ''}`;
  return `non-Error ${typeof e}: ${String(e)}`;
}

/** Runs n inputs (half random, half mutated) through one target. */
export function fuzzTarget(t: DecoderTarget, n: number, r: Rng, failures: string[]): TargetResult {
  const res: TargetResult = { name: t.name, calls: 0, returned: 0, typedErrors: 0, failures: 0, ms: 0 };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    // Half random, half mutated; 1 in 32 of the latter is a genuine encoding, unchanged.
    const b = i % 2 === 0 || t.pool.length === 0 ? randomInput(r, t.prefixes) : r.int(32) === 0 ? copy(r.pick(t.pool)) : mutate(r, r.pick(t.pool), t.bodyStart);
    res.calls++;
    let v: unknown;
    try {
      v = t.decode(b);
    } catch (e) {
      if (t.allowed(e)) { res.typedErrors++; continue; }
      res.failures++;
      if (failures.length < MAX_REPORTED) failures.push(`${t.name}(${hex(b).slice(0, 160)}${b.length > 80 ? '…' : ''} [${b.length} bytes]) threw ${describe(e)}`);
      continue;
    }
    if (t.rejected?.(v)) { res.typedErrors++; continue; }
    res.returned++;
    if (t.check) {
      try { t.check(v, b); } catch (e) {
        res.failures++;
        if (failures.length < MAX_REPORTED) failures.push(`${t.name}(${hex(b).slice(0, 160)} [${b.length} bytes]) decoded, but: ${(e as Error).message}`);
      }
    }
  }
  res.ms = performance.now() - t0;
  return res;
}
