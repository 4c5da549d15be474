// Command-line helpers shared by the simulator's benchmarks (bench/sim.ts, bench/sim-validate.ts).

/** A bad command line: the benchmark prints the message and exits 2. */
export class UsageError extends Error {}

/** `v` as a number in [min, max] (a whole one when `int`), else a UsageError naming `flag`. */
export function numberArg(flag: string, v: string | undefined, min: number, max: number, int: boolean): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
    throw new UsageError(`${flag} needs a ${int ? 'whole ' : ''}number in [${min}, ${max}], got ${v ?? 'nothing'}`);
  }
  return n;
}
