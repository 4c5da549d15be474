// What peers tell us about our own address (Brunet's NatHistory): every link reply carries
// the TA under which the responder sees us. Behind a NAT that is the public mapping, which
// is the only address a peer outside can reach (and punch towards). We advertise those
// views, grouped by public IP, most recently confirmed first; for a NAT that steps ports by
// a constant we also predict the next mapping, and a NAT that picks a random port per peer
// (symmetric) is not advertised at all.
//
// One peer cannot decide what we advertise: each reporter counts for one view (its latest),
// a port seen by two or more reporters is a cone NAT's and outranks single reports, and a
// port pattern needs views from three reporters. A lone liar can at worst add one TA that
// peers try and fail (the secure handshake proves who answers), or, when only one honest
// peer reports too, make a cone NAT look symmetric (peers then use a relay).
import { TransportAddress } from '../transport/ta.js';

export interface NatHistoryOptions {
  /**
   * Views older than this are dropped. Long: views are only refreshed by new links, and a
   * stale one costs a peer no more than one failed attempt before it falls back to a relay.
   */
  maxAgeMs: number;
  /** At most this many advertised views (the NodeInfo has room for 12 TAs in all). */
  maxAdvertised: number;
}

/** Views this recent decide whether a NAT hands out a new port per peer. */
const SYMMETRIC_WINDOW_MS = 120_000;

export const DEFAULT_NAT_OPTIONS: NatHistoryOptions = { maxAgeMs: 60 * 60_000, maxAdvertised: 4 };

interface View { ta: TransportAddress; at: number; seq: number; reporters: Set<string> }

export class NatHistory {
  private readonly views = new Map<string, View>();
  /** The view each reporter last gave. */
  private readonly byReporter = new Map<string, string>();
  private seq = 0;

  constructor(private readonly opts: NatHistoryOptions = DEFAULT_NAT_OPTIONS) {}

  /**
   * Peer `reporter` (its node address key) saw us at `ta` (UDP only: a TCP source port is an
   * ephemeral outbound one). Without a reporter each report counts as a new one.
   */
  record(ta: TransportAddress, now: number, reporter = `anonymous/${this.seq + 1}`): void {
    if (ta.kind !== 'udp' || ta.port === 0) return;
    const before = this.byReporter.get(reporter);
    if (before !== undefined && before !== ta.key) this.forget(before, reporter);
    this.byReporter.set(reporter, ta.key);
    const v = this.views.get(ta.key);
    if (v) { v.at = now; v.seq = ++this.seq; v.reporters.add(reporter); return; }
    this.views.set(ta.key, { ta, at: now, seq: ++this.seq, reporters: new Set([reporter]) });
    // Bounded: a symmetric NAT hands out a new port per peer.
    if (this.views.size > 64) {
      const oldest = [...this.views.values()].reduce((a, b) => (a.seq <= b.seq ? a : b));
      this.drop(oldest);
    }
  }

  /** A reporter moved on to another view: its old one loses its voice (and goes if nobody else gave it). */
  private forget(key: string, reporter: string): void {
    const v = this.views.get(key);
    if (!v) return;
    v.reporters.delete(reporter);
    if (v.reporters.size === 0) this.views.delete(key);
  }

  private drop(v: View): void {
    this.views.delete(v.ta.key);
    for (const r of v.reporters) if (this.byReporter.get(r) === v.ta.key) this.byReporter.delete(r);
  }

  /** Every view peers reported, newest first, with its age (for Information.Info). */
  list(now: number): Array<{ ta: TransportAddress; ageMs: number }> {
    return [...this.views.values()].sort((a, b) => b.seq - a.seq).map((v) => ({ ta: v.ta, ageMs: now - v.at }));
  }

  /** How many views we hold (0: we do not know how anyone sees us). */
  get size(): number { return this.views.size; }

  /** Forgets everything, e.g. when our own address changed and old mappings are void. */
  clear(): void { this.views.clear(); this.byReporter.clear(); }

  /**
   * TAs to advertise beside the local ones, excluding `local` (a public host sees itself).
   * Per public IP (those more peers confirm first, then the most recently confirmed): the
   * port(s) two or more peers see (a cone NAT), else the one port reported, or the latest port
   * and the next one when the ports step by a constant. An IP whose recent
   * views show several ports without a pattern is a symmetric NAT: nobody can reach us there
   * unasked, and advertising its ports would only cost peers handshake timeouts.
   */
  advertised(now: number, local: readonly TransportAddress[]): TransportAddress[] {
    const own = new Set(local.map((t) => t.key));
    const byIp = new Map<string, View[]>();
    for (const v of this.views.values()) {
      if (now - v.at > this.opts.maxAgeMs) { this.drop(v); continue; }
      const list = byIp.get(v.ta.host) ?? [];
      list.push(v);
      byIp.set(v.ta.host, list);
    }
    // IPs confirmed by more peers first, then the most recently confirmed.
    const voices = (g: View[]) => Math.max(...g.map((v) => v.reporters.size));
    const groups = [...byIp.values()].map((l) => l.sort((a, b) => b.seq - a.seq))
      .sort((a, b) => voices(b) - voices(a) || b[0]!.seq - a[0]!.seq);
    const out: TransportAddress[] = [];
    const add = (t: TransportAddress) => { if (!own.has(t.key) && !out.some((o) => o.key === t.key)) out.push(t); };
    for (const g of groups) {
      const recent = g.filter((v) => now - v.at <= SYMMETRIC_WINDOW_MS);
      // A port several peers see is a cone NAT's: it wins over single (possibly false) reports.
      const confirmed = g.filter((v) => v.reporters.size >= 2);
      if (confirmed.length > 0) { for (const v of confirmed) add(v.ta); continue; }
      const next = predictPort(g.map((v) => v.ta.port));
      if (next !== undefined) { add(g[0]!.ta); add(new TransportAddress('udp', g[0]!.ta.host, next)); continue; }
      if (new Set(recent.map((v) => v.ta.port)).size > 1) continue;
      add(g[0]!.ta);
    }
    return out.slice(0, this.opts.maxAdvertised);
  }
}

/**
 * Ports newest first. With at least three views stepping by the same non-zero delta, the
 * next port the NAT will hand out; otherwise undefined (random ports cannot be predicted).
 */
export function predictPort(ports: readonly number[]): number | undefined {
  if (ports.length < 3) return undefined;
  const d = ports[0]! - ports[1]!;
  if (d === 0 || Math.abs(d) > 64 || ports[1]! - ports[2]! !== d) return undefined;
  const next = ports[0]! + d;
  return next > 0 && next < 65536 ? next : undefined;
}
