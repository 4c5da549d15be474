// Churn on a SimWorld: every live node gets an exponentially distributed lifetime (mean
// `lifetimeS` virtual seconds) and crashes when it ends (world.crash: no goodbye); new nodes
// arrive as a Poisson process of rate N / lifetime, so the live count stays about N. A joiner
// bootstraps through the TAs of a few random live nodes (node 0 may be dead), with a fresh
// address and random source. All draws come from one seeded source, so one seed, one trace.
import type { Node } from '../../src/node/node.js';
import type { TimerHandle } from '../../src/util/clock.js';
import type { RandomSource } from '../../src/util/random.js';
import type { SimWorld } from './world.js';

export interface ChurnOptions {
  /** Mean lifetime, virtual seconds. */
  lifetimeS: number;
  /** The steady live count the arrivals aim at (N). */
  nodes: number;
  random: RandomSource;
  /** Nodes that never crash (the DHT keys' owners). */
  exempt?: ReadonlySet<Node>;
  /** Live nodes a joiner is given as bootstraps (default 3). */
  bootstraps?: number;
}

/** Exponentially distributed, mean `mean`. */
export function exponential(random: RandomSource, mean: number): number {
  return -Math.log(1 - random.float()) * mean;
}

export class Churn {
  private arrivals: TimerHandle | undefined;
  private readonly deathTimers = new Map<Node, TimerHandle>();
  private stopped = false;

  constructor(private readonly world: SimWorld, private readonly o: ChurnOptions) {
    if (!(o.lifetimeS > 0)) throw new Error(`churn lifetime must be positive, got ${o.lifetimeS}`);
  }

  /** Gives every live node a lifetime and starts the arrivals. */
  start(): void {
    for (const n of this.world.live) this.doom(n);
    this.nextArrival();
  }

  /** No more deaths or arrivals (nodes already joined keep running). */
  stop(): void {
    this.stopped = true;
    this.arrivals?.cancel();
    for (const t of this.deathTimers.values()) t.cancel();
    this.deathTimers.clear();
  }

  private doom(n: Node): void {
    if (this.o.exempt?.has(n)) return;
    const ms = exponential(this.o.random, this.o.lifetimeS) * 1000;
    this.deathTimers.set(n, this.world.clock.setTimeout(() => {
      this.deathTimers.delete(n);
      this.world.crash(n);
    }, ms));
  }

  private nextArrival(): void {
    if (this.stopped) return;
    const ms = exponential(this.o.random, this.o.lifetimeS / this.o.nodes) * 1000;
    this.arrivals = this.world.clock.setTimeout(() => { this.join(); this.nextArrival(); }, ms);
  }

  private join(): void {
    const k = this.o.bootstraps ?? 3;
    const picked = new Set<Node>();
    for (let tries = 0; picked.size < k && tries < 10 * k; tries++) {
      const p = this.world.pickLive(this.o.random, true);
      if (p) picked.add(p);
    }
    const n = this.world.spawn([...picked].map((p) => this.world.ta(p)));
    this.doom(n);
  }
}
