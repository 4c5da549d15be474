// Traffic-triggered liveness. A crashed peer says no goodbye, and the keepalive (link-manager.ts)
// notices a quiet link only after timeoutMs (30 s): until then every packet routed over it is
// lost. Here a connection we send on but have not heard from for suspectAfterMs is pinged at
// once (a link quiet that long is pinged with the first packet we send on it). Each probe
// unanswered within its timeout (probeRtoMs, doubling) is a miss: one miss makes the connection
// *suspect* (routing goes around it where another hop makes progress), probeMisses in a row
// drop it. Any packet from the peer clears both. Idle links cost nothing here: the keepalive
// pings a link quiet for pingAfterMs (10 s) through the same probes (doubt()), so a crashed
// idle peer goes after 14-16 s instead of the keepalive's 30 s, with fewer pings.
//
// The timeouts adapt to the round trip each connection has shown, as TCP's do (RFC 6298): a pong
// names the ping it answers (its nonce), so every answered probe is an exact sample, and the first
// probe's timeout is srtt + 4·rttvar (at least probeRtoMs / 2 above srtt), at least probeRtoMs
// and at most maxRtoMs; a link is also suspected only after that long a silence if it is longer
// than suspectAfterMs. On a LAN nothing changes (a round trip is well under probeRtoMs). A peer
// that answers late but always (a loaded node whose loop is backlogged, a slow path) is no longer
// pinged three times per quiet spell and dropped after 3.5 s: once its round trip is measured it
// costs one ping, and a dead peer still goes within 3 + 6 + 12 s at worst
// (test/liveness-rtt.test.ts).
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Connection } from './connection.js';

export interface LivenessOptions {
  /** Probe a connection we sent on once it has been silent this long. */
  suspectAfterMs: number;
  /** The first probe's timeout; each further probe waits twice as long. */
  probeRtoMs: number;
  /** Unanswered probes in a row that drop the connection. */
  probeMisses: number;
  /** The most the first probe's timeout grows to from measured round trips. */
  maxRtoMs: number;
}

export const DEFAULT_LIVENESS_OPTIONS: LivenessOptions = { suspectAfterMs: 1500, probeRtoMs: 500, probeMisses: 3, maxRtoMs: 3000 };

export interface LivenessStats { probes: number; suspected: number; cleared: number; dropped: number }

/** Per-connection probe state (kept on the Connection, see Connection.live). */
export class LiveState {
  /** We sent since we last heard from the peer. */
  watching = false;
  /** When the outstanding probe was sent (-1: none). */
  probeAt = -1;
  /** When the pending timer is due (-1: no timer). */
  dueAt = -1;
  misses = 0;
  timer?: TimerHandle;
  /** Smoothed round trip of the answered probes and its mean deviation, ms (srtt -1: none answered yet). */
  srtt = -1;
  rttvar = 0;
  /** The last probes sent, as nonce and time pairs (at most probeMisses of each), to time their pongs. */
  sentNonces?: number[];
  sentAt?: number[];
}

export class Liveness {
  readonly stats: LivenessStats = { probes: 0, suspected: 0, cleared: 0, dropped: 0 };

  constructor(
    private readonly clock: Clock,
    private readonly opts: LivenessOptions,
    /** Sends one ping on the connection; returns its nonce. */
    private readonly ping: (c: Connection) => number,
    /** Whether the connection is still in the table (a dropped one is left alone). */
    private readonly current: (c: Connection) => boolean,
    /** Drops the connection: probeMisses probes went unanswered. */
    private readonly dead: (c: Connection, why: string) => void,
  ) {}

  /** Connection.send's hook: we sent on `c` (called only when it was not watched already). */
  readonly sent = (c: Connection): void => {
    const s = c.live ??= new LiveState();
    s.watching = true;
    if (s.timer) return; // the pending check looks at the new state
    const wait = c.lastHeard + this.suspectAfter(s) - this.clock.now();
    if (wait < 1) this.probe(c); else this.schedule(c, wait);
  };

  /** A pong on `c`: if it answers one of our last probes, a round-trip sample. */
  pong(c: Connection, nonce: number): void {
    const s = c.live, i = s?.sentNonces?.indexOf(nonce) ?? -1;
    if (!s || i < 0) return;
    const r = this.clock.now() - s.sentAt![i]!;
    s.sentNonces![i] = -1; // one sample per probe
    if (s.srtt < 0) { s.srtt = r; s.rttvar = r / 2; return; }
    s.rttvar = 0.75 * s.rttvar + 0.25 * Math.abs(s.srtt - r);
    s.srtt = 0.875 * s.srtt + 0.125 * r;
  }

  /** The first probe's timeout for this connection (ms). */
  rto(s: LiveState): number {
    if (s.srtt < 0) return this.opts.probeRtoMs;
    // At least half of probeRtoMs above the mean, so a steady round trip is not cut at its mean.
    return Math.min(this.opts.maxRtoMs, Math.max(this.opts.probeRtoMs, s.srtt + Math.max(4 * s.rttvar, this.opts.probeRtoMs / 2)));
  }

  private suspectAfter(s: LiveState): number { return Math.max(this.opts.suspectAfterMs, this.rto(s)); }

  /** The keepalive found `c` quiet for pingAfterMs: probe it now, unless a probe is out already. */
  doubt(c: Connection): void {
    const s = c.live ??= new LiveState();
    s.watching = true;
    if (s.probeAt >= 0 && s.timer) return;
    this.forget(c);
    this.probe(c);
  }

  /** A packet from the peer: it is alive. */
  heard(c: Connection): void {
    const s = c.live;
    if (!s) return;
    if (c.suspect) { c.suspect = false; this.stats.cleared++; }
    s.watching = false;
    s.probeAt = -1;
    s.misses = 0;
  }

  /** Stops the connection's timer (it was dropped). */
  forget(c: Connection): void {
    if (c.live?.timer) { c.live.timer.cancel(); c.live.timer = undefined; }
  }

  private schedule(c: Connection, ms: number): void {
    const s = c.live!;
    s.dueAt = this.clock.now() + ms;
    s.timer = this.clock.setTimeout(() => this.check(c), ms);
  }

  private probe(c: Connection): void {
    const s = c.live!;
    s.probeAt = this.clock.now();
    this.stats.probes++;
    const nonce = this.ping(c);
    const n = (s.sentNonces ??= []), at = (s.sentAt ??= []);
    if (n.length >= Math.max(1, this.opts.probeMisses)) { n.shift(); at.shift(); }
    n.push(nonce); at.push(s.probeAt);
    this.schedule(c, this.rto(s) * 2 ** s.misses);
  }

  private check(c: Connection): void {
    const s = c.live!;
    s.timer = undefined;
    if (!s.watching || !this.current(c)) return;
    const now = this.clock.now();
    if (s.probeAt < 0) {
      const wait = c.lastHeard + this.suspectAfter(s) - now;
      if (wait >= 1) this.schedule(c, wait); else this.probe(c);
      return;
    }
    // This process stalled (a timer far past its time): the answer may be waiting unread, so
    // this round is no evidence against the peer. Virtual time never takes this branch.
    if (now - s.dueAt > this.rto(s)) return this.probe(c);
    s.misses++;
    if (!c.suspect) { c.suspect = true; this.stats.suspected++; }
    if (s.misses >= this.opts.probeMisses) {
      this.stats.dropped++;
      this.dead(c, `no answer to ${s.misses} pings`);
      return;
    }
    this.probe(c);
  }
}
