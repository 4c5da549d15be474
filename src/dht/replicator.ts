// Re-replication. A replica point whose two holders both fail before anyone reads the key
// stays empty: a Get refills it, but a key nobody reads would keep one replica fewer for
// good, and a few such losses add up to a lost key. So each node periodically checks, for
// the entries it holds as a point's nearer holder, that the key's *next* replica point still
// has the value, and restores it there if not: around the ring the points vouch for each other.
// Losing a near neighbour brings the next sweep forward (soon()): a crash of neighbours is what
// empties a point, and a majority read (dht.ts) does not refill the points it does not ask.
import { createHash } from 'node:crypto';
import type { Address } from '../address/address.js';
import type { LinkManager } from '../connection/link-manager.js';
import { Mode } from '../routing/ah-wire.js';
import type { RpcManager } from '../rpc/rpc-manager.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { RandomSource } from '../util/random.js';
import { asBool } from '../wire/value.js';
import type { DhtLimits } from './limits.js';
import { pointIndex, replicaPoints } from './placement.js';
import type { StoredEntry, TableStore } from './store.js';

const PARALLEL = 8;
const CHECK_TIMEOUT_MS = 5000;

export const valueHash = (v: Uint8Array): Uint8Array => createHash('sha1').update(v).digest();

/** What re-replication needs from its node (the table server passes its own). */
export interface ReplicatorComponents {
  rpc: Pick<RpcManager, 'call'>;
  link: Pick<LinkManager, 'leaving'>;
  clock: Clock;
  random: RandomSource;
}

/** After a near neighbour is lost, the sweep comes this soon (ms), at most once per EARLY_GAP_MS. */
export const EARLY_SWEEP_MS = 5000;
const EARLY_GAP_MS = 30_000;

export class Replicator {
  readonly stats = { checked: 0, restored: 0, failed: 0, sweeps: 0, early: 0 };
  private timer?: TimerHandle;
  private timerAt = Infinity;
  private running = false;
  private lastEarly = -Infinity;

  constructor(private readonly node: ReplicatorComponents, private readonly store: TableStore, private readonly limits: DhtLimits,
    private readonly isNearerHolder: (point: Address) => boolean) {
    this.schedule();
  }

  close(): void { this.timer?.cancel(); this.timer = undefined; }

  /**
   * A near neighbour was lost: if both holders of a point went at once (a crash of neighbours),
   * only a Get's full read or this sweep refills it, so the sweep comes EARLY_SWEEP_MS from now
   * instead of up to repairMs away (at most once per EARLY_GAP_MS; the periodic schedule resumes after).
   */
  soon(): void {
    const now = this.node.clock.now();
    if (!this.timer || now - this.lastEarly < EARLY_GAP_MS || this.timerAt <= now + EARLY_SWEEP_MS) return;
    this.lastEarly = now;
    this.stats.early++;
    this.timer.cancel();
    this.schedule(EARLY_SWEEP_MS);
  }

  private schedule(ms = this.limits.repairMs * (0.8 + 0.4 * this.node.random.float())): void {
    // Jittered (the periodic one) so the nodes of a ring do not all sweep at once.
    this.timerAt = this.node.clock.now() + ms;
    this.timer = this.node.clock.setTimeout(() => {
      void this.sweep().finally(() => { if (this.timer) this.schedule(); });
    }, ms);
  }

  /** One pass over the store; resolves when every check has finished. */
  async sweep(): Promise<void> {
    if (this.running || this.node.link.leaving) return;
    this.running = true;
    this.stats.sweeps++;
    const inflight = new Set<Promise<void>>();
    try {
      for await (const e of this.store.all()) {
        if (this.node.link.leaving) break;
        const job = this.check(e);
        if (!job) continue;
        inflight.add(job);
        void job.finally(() => inflight.delete(job));
        if (inflight.size >= PARALLEL) await Promise.race(inflight);
      }
      await Promise.all(inflight);
    } finally {
      this.running = false;
    }
  }

  private check(e: StoredEntry): Promise<void> | undefined {
    if (!e.origin) return undefined;
    const d = this.limits.degree;
    const i = pointIndex(e.origin, e.key, d);
    if (i < 0 || !this.isNearerHolder(replicaPoints(e.origin, d)[i]!)) return undefined;
    const next = replicaPoints(e.origin, d)[(i + 1) % d]!;
    const ttl = Math.ceil((e.end - this.node.clock.now()) / 1000);
    if (ttl <= 0) return undefined;
    const rpc = this.node.rpc;
    this.stats.checked++;
    return rpc.call({ address: next, mode: Mode.Greedy }, 'dht.Has', [next.bytes, valueHash(e.value)], { timeoutMs: CHECK_TIMEOUT_MS })
      .then(async (has) => {
        if (asBool(has, 'has')) return;
        await rpc.call({ address: next, mode: Mode.Greedy }, 'dht.Put', [next.bytes, e.value, ttl, false, e.origin!], { timeoutMs: CHECK_TIMEOUT_MS });
        this.stats.restored++;
      })
      .catch(() => { this.stats.failed++; });
  }
}
