// What the simulator measures while it runs (virtual time, seeded). RPC ends and DHT readers
// are drawn among joined nodes (world.hasJoined: status 'connected' once, until the crash),
// so a node still looking for its neighbours is not counted as a routing failure.
// - RouteProbe: random exact-address 'bench.Hops' RPCs at a steady rate between nodes live at
//   send time. A probe counts only if both ends are still alive when it completes or times out
//   (a probe to a node that then crashes says nothing about routing). Per-window and total
//   success and hop counts.
// - DhtWatch: K keys put by K owner nodes through their registrations (re-put every TTL/2, as
//   the shipped code does) and read every round by Dht.get from a random live node. A key not
//   found in two consecutive rounds is lost (and stays counted as lost). A read whose reader
//   crashes before it completes is not counted.
import type { Node } from '../../src/node/node.js';
import { Mode } from '../../src/routing/ah-wire.js';
import type { TimerHandle } from '../../src/util/clock.js';
import type { RandomSource } from '../../src/util/random.js';
import type { SimWorld } from './world.js';

export interface RouteTally { ok: number; failed: number; hops: number[] }

const newTally = (): RouteTally => ({ ok: 0, failed: 0, hops: [] });

export class RouteProbe {
  readonly total = newTally();
  private win = newTally();
  /** Probes whose source or target crashed before they completed (not counted). */
  voided = 0;
  private timer: TimerHandle | undefined;

  constructor(private readonly world: SimWorld, private readonly random: RandomSource, private readonly ratePerS = 20, private readonly timeoutMs = 5000) {}

  start(): void { this.timer = this.world.clock.setInterval(() => this.send(), 1000 / this.ratePerS); }
  stop(): void { this.timer?.cancel(); }

  /** Success and hops since the last call. */
  window(): RouteTally { const w = this.win; this.win = newTally(); return w; }

  private send(): void {
    const w = this.world;
    const a = w.pickLive(this.random, true), b = w.pickLive(this.random, true);
    if (!a || !b || a === b) return;
    const done = (hops: number | undefined) => {
      if (!w.isAlive(a) || !w.isAlive(b)) { this.voided++; return; }
      for (const t of [this.total, this.win]) {
        if (hops === undefined) t.failed++;
        else { t.ok++; t.hops.push(hops); }
      }
    };
    a.rpc.call({ address: b.address, mode: Mode.Exact }, 'bench.Hops', [], { timeoutMs: this.timeoutMs })
      .then((h) => done(typeof h === 'number' ? h : undefined), () => done(undefined));
  }
}

export const successOf = (t: RouteTally): number => (t.ok + t.failed === 0 ? NaN : t.ok / (t.ok + t.failed));
export const meanOf = (xs: number[]): number => (xs.length === 0 ? NaN : xs.reduce((s, x) => s + x, 0) / xs.length);

interface WatchedKey { key: Uint8Array; value: Uint8Array; owner: Node; misses: number; lost: boolean }

export class DhtWatch {
  private keys: WatchedKey[] = [];
  /** Keys whose first registration failed (not watched). */
  unplaced = 0;
  rounds = 0;
  /** Availability of the last completed round (NaN before the first). */
  availability = NaN;
  private busy = false;
  private timer: TimerHandle | undefined;

  constructor(private readonly world: SimWorld, private readonly random: RandomSource, private readonly ttlS = 600) {}

  get placed(): number { return this.keys.length; }
  get lost(): number { return this.keys.filter((k) => k.lost).length; }
  get owners(): Set<Node> { return new Set(this.keys.map((k) => k.owner)); }

  /** Picks `count` distinct live owners and registers one key each; resolves when every first write settled. */
  async place(count: number, owners: Node[]): Promise<void> {
    const enc = new TextEncoder();
    await Promise.all(owners.slice(0, count).map(async (owner, i) => {
      const key = enc.encode(`sim-key-${i}`), value = enc.encode(`sim-value-${i}-${owner.address.key.slice(0, 8)}`);
      try {
        await this.world.dhts.get(owner)!.registrations.register(key, value, this.ttlS);
        this.keys.push({ key, value, owner, misses: 0, lost: false });
      } catch { this.unplaced++; }
    }));
    this.keys.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key))); // placement order must not depend on completion order
  }

  /** A read round every `everyMs` (a round still running when the next is due is not overlapped). */
  start(everyMs = 30_000): void { this.timer = this.world.clock.setInterval(() => void this.round(), everyMs); }
  stop(): void { this.timer?.cancel(); }

  async round(): Promise<void> {
    if (this.busy || this.keys.length === 0) return;
    this.busy = true;
    let found = 0, counted = 0;
    await Promise.all(this.keys.map(async (k) => {
      const reader = this.world.pickLive(this.random, true);
      const dht = reader && this.world.dhts.get(reader);
      if (!reader || !dht) return;
      let ok = false;
      try { ok = (await dht.dht.get(k.key)).some((v) => Buffer.compare(Buffer.from(v.value), Buffer.from(k.value)) === 0); } catch { ok = false; }
      if (!this.world.isAlive(reader)) return;
      counted++;
      if (ok) { found++; k.misses = 0; } else if (++k.misses >= 2) k.lost = true;
    }));
    this.rounds++;
    this.availability = counted === 0 ? NaN : found / counted;
    this.busy = false;
  }
}
