// StructuredNear overlord: keeps the 2 nearest nodes on each side linked. A node joins by
// asking for the nodes bracketing its own address (through a leaf), then converges by
// linking to any closer node its neighbours report, and repairs a lost neighbour at once
// from what the others reported.
import { Address, RING } from '../../address/address.js';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/log.js';
import type { RandomSource } from '../../util/random.js';
import type { Connection } from '../connection.js';
import type { LinkManager } from '../link-manager.js';
import type { NodeInfo } from '../node-info.js';
import type { ConnectionTable } from '../table.js';
import { tunnelTA } from '../tunnel.js';
import type { Connector, Overlord } from './overlord.js';

export const NEAR_PER_SIDE = 2;
/** How many nearest nodes per side we report to peers (slack beyond the 2 we keep). */
export const REPORT_PER_SIDE = 3;
/** A near connection this many positions away on both sides is surplus. */
const TRIM_RANK = 4;
const MAX_PARALLEL_LINKS = 6;
/**
 * A candidate we failed to link to is passed over for FAILED_HOLD_MS, doubling with each failure
 * in a row up to FAILED_HOLD_MAX_MS; a failure FAILED_HOLD_MAX_MS after the last hold ended starts
 * over. A dead node so cannot keep its slot, while one that only missed a handshake (lost at an
 * overloaded node) is tried again within seconds: a fixed 60 s hold, on both sides, kept joiners
 * out of the ring for a minute after a few seconds of loss (test/near-join.test.ts).
 */
const FAILED_HOLD_MS = 4000;
const FAILED_HOLD_MAX_MS = 60_000;
/** How often a nearest neighbour that has not reported its neighbours yet is asked for them. */
const ASK_STATUS_MS = 1000;

/** How long a node heard of stays a candidate. */
const CANDIDATE_MS = 120_000;
/**
 * A joining node whose join was answered but which still has no structured link after this long
 * links to the nearest candidates itself (longer than a connect-back's handshake with a resend).
 */
const JOIN_LINK_WAIT_MS = 3000;

/**
 * A node heard of: `info` as we would link to it; `src` the NodeInfo it was reported as (shared,
 * frozen) and `via` the reporter named in the relay TA added to it (none added: undefined);
 * `value` its address's ring position, kept here for the ordered search (one read, not four).
 */
interface Candidate { info: NodeInfo; src: NodeInfo; via: Address | undefined; at: number; readonly value: bigint }

/** Index of the first candidate with address >= v (may equal length). */
function lowerBound(ring: Candidate[], v: bigint): number {
  let lo = 0, hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring[mid]!.value < v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export interface NearOptions {
  settleMs: number; retryMinMs: number; retryMaxMs: number;
  /** Skip passes that provably change nothing (see NearOverlord.quiet); off only to check that claim. */
  skipQuiet: boolean;
}
export const DEFAULT_NEAR_OPTIONS: NearOptions = { settleMs: 30_000, retryMinMs: 1000, retryMaxMs: 30_000, skipQuiet: true };

export class NearOverlord implements Overlord {
  /** Nodes we heard of from peers but are not linked to: candidates for closer neighbours. */
  private candidates = new Map<string, Candidate>();
  /** The same candidates in increasing address order, so the nearest per side are found without a scan. */
  private ring: Candidate[] = [];
  /** Candidates whose connection became structured since the last activation (dropped then, if still so). */
  private nowStructured = new Set<string>();
  /** Candidates held after failed links: until when, and the hold that was given. */
  private failed = new Map<string, { until: number; hold: number }>();
  private linking = new Set<string>();
  private joinBackoff: number;
  private nextJoin = 0;
  /**
   * A join request went out and none has settled since (a retry can go before an earlier one
   * settles; the first to settle clears this, and a link we start then races the other's
   * connect-back, which the handshake settles); when a join was last answered (-Infinity: none).
   */
  private joinPending = false;
  private joinAnsweredAt = -Infinity;
  private lastReported = '';
  /** When stale candidates were last swept (sweep). */
  private swept = 0;
  private askedStatus = new WeakMap<Connection, number>();
  private connectedMemo?: { l?: Connection; r?: Connection; lList?: readonly NodeInfo[]; rList?: readonly NodeInfo[]; value: boolean };
  /** Bumped by every change to what a pass reads or does: the table, candidates, holds, links and requests under way. */
  private version = 0;
  /**
   * Set after a pass that changed nothing: until `until`, with the same version and the same
   * reports from our two nearest neighbours, a pass would change nothing either, so it is
   * skipped. `until` is the first time one of the pass's rules that read the clock could act
   * (a hold ending or forgotten, a candidate going stale, the sweep, asking for a report, the
   * table settling for a trim, a relay hold ending). At 10,000 nodes in steady state the
   * heartbeat's near pass was a fifth of the simulator's time, nearly all of it passes like these.
   */
  private quiet?: { version: number; until: number; l?: Connection; r?: Connection; lList?: readonly NodeInfo[]; rList?: readonly NodeInfo[]; known: number };
  /** During a pass: the earliest time a rule that reads the clock could act (quiet.until). */
  private wake = Infinity;
  /** Passes skipped as quiet. */
  skipped = 0;

  constructor(
    private readonly table: ConnectionTable,
    private readonly link: LinkManager,
    private readonly connector: Connector,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly log: Logger,
    private readonly opts: NearOptions = DEFAULT_NEAR_OPTIONS,
  ) {
    this.joinBackoff = opts.retryMinMs;
    table.onChange((_ev, c) => {
      // The memo names connections: drop it with the table's change, so that a closed connection
      // (and through its edge, a departed peer's objects in a process of many nodes) is not kept.
      this.connectedMemo = undefined;
      this.quiet = undefined; // (it names connections too)
      this.version++;
      if (c.structured && this.candidates.has(c.address.key)) this.nowStructured.add(c.address.key);
    });
  }

  /** Our nearest structured connections around `peer`, as NodeInfos (plus ourselves). */
  reportFor(peer: Address): NodeInfo[] {
    return this.table.nearestTo(peer, REPORT_PER_SIDE).filter((c) => !c.address.equals(peer)).map((c) => c.info);
  }

  learn(from: Connection | null, list: NodeInfo[]): void {
    const now = this.clock.now();
    const reporter = from && from.edge.kind !== 'tunnel' ? from.address : undefined;
    for (const n of list) {
      if (n.address.equals(this.table.self) || this.table.get(n.address)?.structured) continue;
      // The reporter is linked to n: a relay through it works even when n's own list has no
      // relay TA (yet) and its direct ones cannot be reached from here.
      const via = reporter && !n.tas.some((t) => t.kind === 'tunnel') ? reporter : undefined;
      const had = this.candidates.get(n.address.key);
      // Reported again as it was, through the same reporter: only fresher. Nothing a pass reads
      // changed but the time it goes stale, which only comes later (see `quiet`), so passes
      // may still be skipped. At 1,000 nodes a third of the entries reported repeat what is held.
      if (had && had.src === n && had.via === via) { had.at = now; continue; }
      const info = via ? { address: n.address, tas: [...n.tas, tunnelTA(n.address, [via])] } : n;
      if (had) { had.info = info; had.src = n; had.via = via; had.at = now; this.version++; } else this.addCandidate({ info, src: n, via, at: now, value: n.address.value });
    }
    if (from) this.activate(now);
  }

  /**
   * True once both sides' nearest neighbours confirm us (Brunet's IsConnected). A neighbour
   * that has not reported its own neighbours yet (it linked to us, its Status is still on the
   * way) confirms nothing: taken as "nobody between", one fresh inbound link made a joining
   * node count as connected while it could not route, and it stored its own DHT writes.
   */
  isConnected(): boolean {
    // The answer depends only on the structured connections (the memo is dropped on any table
    // change) and the lists the two neighbours reported (replaced, never mutated, on each
    // report): /metrics asks every node of a process once a scrape.
    const m = this.connectedMemo;
    if (m && m.lList === m.l?.peerNeighbors && m.rList === m.r?.peerNeighbors) return m.value;
    const { left: l, right: r } = this.table.bracket(this.table.self);
    const self = this.table.self;
    // Nobody the neighbour knows may sit between it and us.
    const gap = (c: Connection, between: (a: Address) => boolean) => c.peerNeighbors.some((n) => between(n.address));
    const value = !!l && !!r && l.peerNeighborsKnown && r.peerNeighborsKnown &&
      !gap(l, (a) => a.isBetweenFromLeft(self, l.address)) && !gap(r, (a) => a.isBetweenFromRight(self, r.address));
    this.connectedMemo = { l, r, lList: l?.peerNeighbors, rList: r?.peerNeighbors, value };
    return value;
  }

  activate(now: number): void {
    const self = this.table.self;
    if (this.table.structured.length === 0) {
      this.join(now);
      // Joined, but no link came of it: the nodes that answered (our would-be neighbours) tried
      // to link back and failed, as handshakes do at an overloaded node. We know where we
      // belong, so link to them ourselves, rather than wait for the next join, whose back-off
      // reaches 16-30 s: at 1,000 nodes in one process that wait held the ring 20 s from 1.0.
      if (this.candidates.size === 0 || this.joinPending || now - this.joinAnsweredAt < JOIN_LINK_WAIT_MS) return;
    } else {
      this.joinBackoff = this.opts.retryMinMs;
      const q = this.quiet;
      if (q && q.version === this.version && now < q.until && q.lList === q.l?.peerNeighbors && q.rList === q.r?.peerNeighbors &&
        q.known === ((q.l?.peerNeighborsKnown ? 1 : 0) | (q.r?.peerNeighborsKnown ? 2 : 0))) { this.skipped++; return; }
    }
    this.quiet = undefined;
    const v0 = this.version;
    this.wake = now - this.swept >= CANDIDATE_MS ? Infinity : this.swept + CANDIDATE_MS;
    this.askUnreported(now);

    for (const [k, f] of this.failed) {
      if (f.until + FAILED_HOLD_MAX_MS < now) { this.failed.delete(k); this.version++; }
      // A hold still on ends (its candidate can be picked); one over is forgotten later.
      else this.wake = Math.min(this.wake, f.until >= now ? f.until : f.until + FAILED_HOLD_MAX_MS);
    }
    if (now - this.swept >= CANDIDATE_MS) this.sweep(now);
    // A leaf to a would-be neighbour stays a candidate: linking to it upgrades the leaf.
    for (const key of this.nowStructured) {
      const c = this.candidates.get(key);
      if (c && this.table.get(c.info.address)?.structured) this.dropCandidate(key);
    }
    this.nowStructured.clear();
    // Link to the candidates that would be among our nearest per side, and no others.
    const { left, right } = this.table.neighborsOf(self, NEAR_PER_SIDE);
    const sides = [[left, true, this.nearestLive(now, true)], [right, false, this.nearestLive(now, false)]] as const;
    for (const [have, clockwise, live] of sides) {
      if (live.length === 0) continue;
      const best = nearest(self.value, clockwise, have.map((c) => c.info), live, NEAR_PER_SIDE);
      for (const info of best) {
        if (this.linking.size >= MAX_PARALLEL_LINKS) break;
        if (!this.table.get(info.address)?.structured && !this.linking.has(info.address.key)) this.linkTo(info);
      }
    }

    this.reportChanges();
    this.trim(now);
    if (this.opts.skipQuiet && this.version === v0 && this.table.structured.length > 0) {
      const { left: l, right: r } = this.table.bracket(self);
      const known = (l?.peerNeighborsKnown ? 1 : 0) | (r?.peerNeighborsKnown ? 2 : 0);
      this.quiet = { version: v0, until: this.wake, l, r, lList: l?.peerNeighbors, rList: r?.peerNeighbors, known };
    }
  }

  private linkTo(info: NodeInfo): void {
    const key = info.address.key;
    this.linking.add(key);
    this.version++;
    this.link.connect(info, 'structured.near').then((c) => {
      this.linking.delete(key);
      this.version++;
      // Held, not dropped: the next nearest are tried meanwhile, and this one again after the
      // hold (a dead one goes stale after CANDIDATE_MS).
      if (!c) {
        const now = this.clock.now(), last = this.failed.get(key);
        const hold = last ? Math.min(FAILED_HOLD_MAX_MS, 2 * last.hold) : FAILED_HOLD_MS;
        this.failed.set(key, { until: now + hold, hold });
      }
    }, () => { this.linking.delete(key); this.version++; });
  }

  /**
   * The NEAR_PER_SIDE nearest candidates going clockwise (or counter-clockwise) that are
   * not held after a failure nor being linked: candidates being linked step aside so the
   * next ones are tried in parallel (after a crash the nearest reported nodes are often dead,
   * and each dead one costs a full handshake timeout). Candidates heard of more than
   * CANDIDATE_MS ago are dropped where the walk meets them: until then none can be picked.
   */
  private nearestLive(now: number, clockwise: boolean): NodeInfo[] {
    const out: NodeInfo[] = [], stale: string[] = [];
    const ring = this.ring, n = ring.length;
    const start = lowerBound(ring, this.table.self.value) + (clockwise ? 0 : n - 1);
    for (let step = 0; step < n && out.length < NEAR_PER_SIDE; step++) {
      const c = ring[(start + (clockwise ? step : n - step)) % n]!;
      const key = c.info.address.key;
      if (now - c.at > CANDIDATE_MS) { stale.push(key); continue; }
      this.wake = Math.min(this.wake, c.at + CANDIDATE_MS); // walked past: it goes stale then
      if ((this.failed.get(key)?.until ?? 0) < now && !this.linking.has(key)) out.push(c.info);
    }
    for (const key of stale) this.dropCandidate(key);
    return out;
  }

  /**
   * Drops every candidate heard of more than CANDIDATE_MS ago. nearestLive drops those it
   * walks past, but it stops at the nearest usable ones, so under churn stale candidates
   * beyond them were never dropped: a 300-node simulation with 2-minute lifetimes kept 26 per
   * node after 10 minutes, and their count kept growing. Dropping them early changes nothing
   * else: the walk would have dropped them on reaching them, and a node reported again is
   * added again.
   */
  private sweep(now: number): void {
    this.swept = now;
    this.version++;
    const stale: string[] = [];
    for (const [key, c] of this.candidates) if (now - c.at > CANDIDATE_MS) stale.push(key);
    for (const key of stale) this.dropCandidate(key);
  }

  private addCandidate(c: Candidate): void {
    this.candidates.set(c.info.address.key, c);
    this.version++;
    this.ring.splice(lowerBound(this.ring, c.value), 0, c);
  }

  private dropCandidate(key: string): void {
    const c = this.candidates.get(key);
    if (!c) return;
    this.candidates.delete(key);
    this.version++;
    this.ring.splice(lowerBound(this.ring, c.value), 1);
  }

  /** Our nearest neighbour on each side must report its neighbours before we count as connected: ask those that have not. */
  private askUnreported(now: number): void {
    const { left, right } = this.table.neighborsOf(this.table.self, 1);
    for (const c of new Set([left[0], right[0]])) {
      if (!c || c.peerNeighborsKnown) continue;
      const asked = this.askedStatus.get(c) ?? -Infinity;
      if (now - asked < ASK_STATUS_MS) { this.wake = Math.min(this.wake, asked + ASK_STATUS_MS); continue; }
      this.askedStatus.set(c, now);
      this.version++;
      this.link.requestStatus(c);
    }
  }

  /** Joining: ask the ring for the two nodes bracketing our address, through a leaf. */
  private join(now: number): void {
    if (now < this.nextJoin) return;
    const leaves = [...this.table.all()].filter((c) => !c.structured);
    if (leaves.length === 0) return;
    const via = leaves[this.random.int(leaves.length)]!;
    this.nextJoin = now + this.joinBackoff;
    this.joinBackoff = Math.min(this.opts.retryMaxMs, this.joinBackoff * 2);
    // Target self+2, not self: the leaf would otherwise deliver straight back to us.
    const target = Address.ringPoint(this.table.self.value + 2n);
    this.joinPending = true;
    this.connector.connectTo(target, 'closest', 'structured.near', via).then(
      (infos) => { this.joinPending = false; this.joinAnsweredAt = this.clock.now(); this.learn(null, infos); },
      (e) => { this.joinPending = false; this.log.debug(`join via ${via.address.key} failed: ${(e as Error).message}`); },
    );
  }

  /** When our neighbourhood changes, tell our near neighbours so they can converge. */
  private reportChanges(): void {
    const near = this.table.nearestTo(this.table.self, REPORT_PER_SIDE);
    const sig = near.map((c) => c.address.key).join(',');
    if (sig === this.lastReported) return;
    this.lastReported = sig;
    this.version++;
    for (const c of near) this.link.sendStatus(c);
  }

  /**
   * A connection is gone. If it was one of our nearest, replace it at once from what it and
   * the others reported, and ask the remaining nearest for fresh lists.
   */
  lost(c: Connection): void {
    this.learn(null, c.peerNeighbors);
    const self = this.table.self;
    const { left, right } = this.table.neighborsOf(self, REPORT_PER_SIDE);
    const wasNear = left.length < REPORT_PER_SIDE || right.length < REPORT_PER_SIDE
      || c.address.isBetweenFromLeft(self, left[REPORT_PER_SIDE - 1]!.address)
      || c.address.isBetweenFromRight(self, right[REPORT_PER_SIDE - 1]!.address);
    if (!wasNear) return;
    for (const n of this.table.nearestTo(self, REPORT_PER_SIDE)) this.link.requestStatus(n);
  }

  private trim(now: number): void {
    if (now - this.table.lastChange < this.opts.settleMs) { this.wake = Math.min(this.wake, this.table.lastChange + this.opts.settleMs); return; }
    if (!this.isConnected()) return;
    const s = this.table.structured;
    const n = s.length;
    if (n <= 2 * TRIM_RANK) return;
    const { left } = this.table.neighborsOf(this.table.self, n);
    // left[i] is i positions away clockwise; n-1-i positions counter-clockwise.
    for (let i = TRIM_RANK; i < n - TRIM_RANK; i++) {
      const c = left[i]!;
      if (c.type !== 'structured.near') continue;
      if (c.relayHeld(now)) this.wake = Math.min(this.wake, c.relayUntil);
      else { this.link.close(c, 'trimmed: not a near neighbour'); this.version++; }
    }
  }
}

/**
 * The k infos of `a` then `b` nearest to `self` going clockwise (or counter-clockwise),
 * nearest first (ties: the earlier one).
 */
function nearest(self: bigint, clockwise: boolean, a: NodeInfo[], b: NodeInfo[], k: number): NodeInfo[] {
  const best: { info: NodeInfo; d: bigint }[] = [];
  for (const list of [a, b]) {
    for (const info of list) {
      const d = clockwise ? ringDistance(self, info.address.value) : ringDistance(info.address.value, self);
      if (best.length === k && !(d < best[k - 1]!.d)) continue;
      let i = best.length;
      while (i > 0 && d < best[i - 1]!.d) i--;
      best.splice(i, 0, { info, d });
      if (best.length > k) best.pop();
    }
  }
  return best.map((x) => x.info);
}

/** Clockwise distance from `from` to `to` on the ring. */
const ringDistance = (from: bigint, to: bigint): bigint => (to - from) & (RING - 1n);
