// The replica side of the DHT (Brunet's TableServer): stores entries for ring points this
// node brackets, mirrors each write to the other bracketing node, hands entries over when
// its nearest neighbours change, and before it leaves.
import { Address } from '../address/address.js';
import type { Connection } from '../connection/connection.js';
import type { LinkManager } from '../connection/link-manager.js';
import type { ConnectionTable } from '../connection/table.js';
import { RpcError, type RpcManager } from '../rpc/rpc-manager.js';
import { RpcCode } from '../rpc/rpc-wire.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { RandomSource } from '../util/random.js';
import type { Logger } from '../util/log.js';
import { asBool, asBytes, asInt, WireError, type Value } from '../wire/value.js';
import type { DhtLimits } from './limits.js';
import type { StoredEntry, TableStore } from './store.js';
import { claimFitsPoint, isClaimValue, isExclusiveKey, openClaim, type Claim } from './claims.js';
import { pointIndex } from './placement.js';
import { Replicator, valueHash } from './replicator.js';

const PAGE_BYTES = 1024;
const HANDOFF_PARALLEL = 10;
const HANDOFF_DELAY_MS = 250;
const MIRROR_TIMEOUT_MS = 3000;

interface PutArgs { key: Uint8Array; value: Uint8Array; ttl: number; create: boolean; origin?: Uint8Array }

/** What the replica side needs from its node (a Node is one). */
export interface TableServerComponents {
  address: Address;
  rpc: Pick<RpcManager, 'register' | 'call'>;
  table: Pick<ConnectionTable, 'onChange' | 'neighborsOf'>;
  link: Pick<LinkManager, 'leaving'>;
  clock: Clock;
  /** The node's injected random source (the re-replication sweep's jitter). */
  random: RandomSource;
  log: Logger;
  /** Our last words before the node leaves (the handoff). */
  beforeLeave: (() => Promise<void>)[];
}

export class TableServer {
  readonly stats = { puts: 0, gets: 0, mirrored: 0, handedOff: 0, rejected: 0 };
  private lastLeft?: string;
  private lastRight?: string;
  private handoffTimer?: TimerHandle;
  private sweepTimer?: TimerHandle;

  constructor(private readonly node: TableServerComponents, readonly store: TableStore, private readonly limits: DhtLimits) {
    const rpc = node.rpc;
    rpc.register('dht.Put', (a) => this.onPut(a, true));
    rpc.register('dht.PutHandler', (a) => this.onPut(a, false));
    rpc.register('dht.Get', (a) => this.onGet(a));
    rpc.register('dht.Count', () => this.store.count());
    rpc.register('dht.Has', (a) => this.onHas(a));
    node.table.onChange((ev, c) => {
      if (!c.structured) return;
      this.scheduleHandoff();
      // A crash of near neighbours can empty a point: re-replicate soon (replicator.ts).
      if (ev === 'remove' && c.type === 'structured.near' && !node.link.leaving) this.replicator?.soon();
    });
    node.beforeLeave.push(() => this.leaveHandoff());
    this.sweepTimer = node.clock.setInterval(() => void this.store.sweep().catch(() => {}), 60_000);
    this.replicator = new Replicator(node, store, limits, (p) => this.isNearerHolder(p));
  }

  readonly replicator: Replicator;

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    this.handoffTimer?.cancel();
    this.sweepTimer?.cancel();
    this.replicator.close();
    await this.store.close();
  }

  private parsePut(a: Value[]): PutArgs {
    try {
      const key = asBytes(a[0] ?? null, 'key');
      const value = asBytes(a[1] ?? null, 'value');
      const ttl = asInt(a[2] ?? null, 'ttl');
      const create = asBool(a[3] ?? false, 'create');
      if (key.length !== 20) throw new WireError('key must be a 20-byte ring point');
      // The client's key, kept for re-replication; only if the point really derives from it.
      const o = a[4] == null ? undefined : asBytes(a[4], 'origin');
      const origin = o && o.length <= this.limits.maxKeyBytes && pointIndex(o, key, this.limits.degree) >= 0 ? o : undefined;
      if (value.length > this.limits.maxValueBytes) throw new WireError(`value of ${value.length} bytes exceeds ${this.limits.maxValueBytes}`);
      if (ttl <= 0) throw new WireError('ttl must be positive');
      return { key, value, ttl: Math.min(ttl, this.limits.maxTtl), create, origin };
    } catch (e) {
      this.stats.rejected++;
      throw new RpcError(RpcCode.BadParams, e instanceof WireError ? e.message : String(e));
    }
  }

  private async onPut(a: Value[], mirror: boolean): Promise<Value> {
    const p = this.parsePut(a);
    this.stats.puts++;
    if (isClaimValue(p.value) && await this.claimTaken(p)) return { ok: false, reason: 'exists' };
    const outcome = await this.store.put(p.key, p.value, p.ttl, p.create, p.origin);
    if (outcome === 'exists') return { ok: false, reason: 'exists' };
    // The other node bracketing the point keeps a second copy; we answer once it has (or
    // could not), so an acknowledged point is normally held twice.
    if (mirror) {
      const other = this.otherBracket(Address.fromBytes(p.key));
      if (other) {
        await this.node.rpc.call({ via: other }, 'dht.PutHandler', [p.key, p.value, p.ttl, false, p.origin ?? null], { timeoutMs: MIRROR_TIMEOUT_MS })
          .then(() => { this.stats.mirrored++; }, () => {});
      }
    }
    return { ok: true, outcome };
  }

  /**
   * Verifies a signed claim (it must be genuine and belong at this point) and, for an exclusive
   * key (dhcp:), reports whether another claimer already holds a live claim here: one member
   * cannot take over another's. Shared signed keys (ipop:) take one value per signer.
   */
  private async claimTaken(p: PutArgs): Promise<boolean> {
    let claim: Claim;
    try {
      claim = openClaim(p.value);
      if (!claimFitsPoint(claim, p.key, this.limits.degree)) throw new WireError('claim does not belong at this ring point');
    } catch (e) {
      this.stats.rejected++;
      throw new RpcError(RpcCode.BadParams, `invalid claim: ${(e as Error).message}`);
    }
    if (!isExclusiveKey(claim.key)) return false;
    const existing = await this.store.get(p.key, 0, 1 << 20);
    return existing.entries.some((e) => {
      if (!isClaimValue(e.value)) return false;
      try { return !openClaim(e.value).claimer.equals(claim.claimer); } catch { return false; }
    });
  }

  /** Of the two nodes bracketing a point, are we the one nearer to it (the one greedy routing reaches)? */
  private isNearerHolder(point: Address): boolean {
    const other = this.otherBracket(point);
    return !other || this.node.address.absDistanceTo(point) <= other.address.absDistanceTo(point);
  }

  /** Whether this point holds a value with the given SHA-1 (re-replication checks). */
  private async onHas(a: Value[]): Promise<Value> {
    let key: Uint8Array, hash: Uint8Array;
    try {
      key = asBytes(a[0] ?? null, 'key');
      hash = asBytes(a[1] ?? null, 'hash');
      if (key.length !== 20 || hash.length !== 20) throw new WireError('key and hash must be 20 bytes');
    } catch (e) {
      this.stats.rejected++;
      throw new RpcError(RpcCode.BadParams, (e as Error).message);
    }
    const page = await this.store.get(key, 0, 1 << 24);
    return page.entries.some((e) => Buffer.from(valueHash(e.value)).equals(hash));
  }

  private otherBracket(point: Address): Connection | undefined {
    const self = this.node.address;
    const { left, right } = this.node.table.neighborsOf(self, 1);
    const l = left[0], r = right[0];
    return l && point.isBetweenFromLeft(self, l.address) ? l : r;
  }

  private async onGet(a: Value[]): Promise<Value> {
    let key: Uint8Array, offset: number;
    try {
      key = asBytes(a[0] ?? null, 'key');
      offset = a[1] == null ? 0 : asInt(a[1], 'offset');
      if (key.length !== 20 || offset < 0) throw new WireError('bad key or offset');
    } catch (e) {
      this.stats.rejected++;
      throw new RpcError(RpcCode.BadParams, (e as Error).message);
    }
    this.stats.gets++;
    const page = await this.store.get(key, offset, PAGE_BYTES);
    const now = this.node.clock.now();
    return {
      values: page.entries.map((e) => ({ value: e.value, ttl: Math.max(0, Math.round((e.end - now) / 1000)), age: Math.max(0, Math.round((now - e.created) / 1000)) })),
      total: page.total,
      next: page.next ?? null,
      node: this.node.address.bytes,
    };
  }

  // ---- handoff ----
  private scheduleHandoff(): void {
    if (this.node.link.leaving || this.closed) return;
    this.handoffTimer?.cancel();
    this.handoffTimer = this.node.clock.setTimeout(() => {
      this.handoff().catch((e) => this.node.log.warn(`dht handoff: ${(e as Error).message}`));
    }, HANDOFF_DELAY_MS);
  }

  /**
   * When our nearest neighbour on a side changes, it may now bracket points we hold: push it
   * every entry between us and our second neighbour on that side.
   */
  private async handoff(): Promise<void> {
    const self = this.node.address;
    const { left, right } = this.node.table.neighborsOf(self, 2);
    const jobs: Promise<void>[] = [];
    if (left[0] && left[0].address.key !== this.lastLeft) {
      const far = (left[1] ?? left[0]).address;
      jobs.push(this.push(left[0], this.store.range(self.bytes, far.bytes)));
    }
    if (right[0] && right[0].address.key !== this.lastRight) {
      const far = (right[1] ?? right[0]).address;
      jobs.push(this.push(right[0], this.store.range(far.bytes, self.bytes)));
    }
    this.lastLeft = left[0]?.address.key;
    this.lastRight = right[0]?.address.key;
    await Promise.all(jobs);
  }

  private async push(to: Connection, entries: AsyncIterable<StoredEntry>, deadline = Infinity): Promise<void> {
    const inflight = new Set<Promise<unknown>>();
    for await (const e of entries) {
      if (this.closed || to.edge.closed || this.node.clock.now() > deadline) break;
      const ttl = Math.ceil((e.end - this.node.clock.now()) / 1000);
      if (ttl <= 0) continue;
      const p = this.node.rpc.call({ via: to }, 'dht.PutHandler', [e.key, e.value, ttl, false, e.origin ?? null], { timeoutMs: 3000 })
        .then(() => { this.stats.handedOff++; }, () => {});
      inflight.add(p);
      p.finally(() => inflight.delete(p));
      if (inflight.size >= HANDOFF_PARALLEL) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  }

  /** Before leaving: our neighbours on both sides inherit everything we hold (bounded time). */
  private async leaveHandoff(): Promise<void> {
    this.handoffTimer?.cancel();
    const { left, right } = this.node.table.neighborsOf(this.node.address, 1);
    const deadline = this.node.clock.now() + 1000;
    const targets = [...new Set([left[0], right[0]].filter((c): c is Connection => !!c))];
    await Promise.all(targets.map((c) => this.push(c, this.store.all(), deadline)));
  }
}
