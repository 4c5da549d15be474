// Keeps our NAT views fresh (NatHistory learns them from link replies, but a node behind a
// NAT that others link to, or one whose UDP was blocked until now, may have none): every
// `periodMs`, and soon after a relay upgrade fails, we ask two peers we are linked to over a
// fresh UDP edge how they see us (LinkManager.reflect). Peers on our own LAN or host are
// skipped: they see our local address, not the NAT's. While we know no view at all (our
// UDP was blocked, or every round failed so far), rounds come every few seconds, so a node
// whose UDP starts working learns its mapping, and can be reached directly, soon after.
import type { Clock, TimerHandle } from '../util/clock.js';
import type { RandomSource } from '../util/random.js';
import type { TransportAddress } from '../transport/ta.js';
import type { LinkManager } from './link-manager.js';
import { reflect } from './link-repair.js';
import type { ConnectionTable } from './table.js';
import { isLoopback, lan } from './ta-order.js';

const PEERS_PER_ROUND = 2;
const SOON_MS = 1000;
const MIN_GAP_MS = 10_000;
/** The period while we know no view of ourselves. */
const NO_VIEW_MS = 5000;

export class NatReflector {
  private timer?: TimerHandle;
  private soonTimer?: TimerHandle;
  private last = -Infinity;
  private running = false;

  constructor(
    private readonly table: ConnectionTable,
    private readonly link: LinkManager,
    private readonly ownTAs: () => { host: string; kind: string }[],
    private readonly hasView: () => boolean,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly periodMs = 30_000,
  ) {}

  start(): void {
    if (this.periodMs <= 0) return;
    this.running = true;
    this.schedule(3000);
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.soonTimer?.cancel();
  }

  /** Something suggests our views are stale (a hole punch failed): reflect again shortly. */
  soon(): void {
    if (!this.running || this.soonTimer || this.clock.now() - this.last < MIN_GAP_MS) return;
    this.soonTimer = this.clock.setTimeout(() => { this.soonTimer = undefined; this.round(); }, SOON_MS);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => {
      this.round();
      const period = this.hasView() ? this.periodMs : Math.min(this.periodMs, NO_VIEW_MS);
      this.schedule(period * (0.75 + 0.5 * this.random.float()));
    }, ms);
  }

  private round(): void {
    const mine = this.ownTAs().filter((t) => t.kind === 'udp');
    if (mine.length === 0) return;
    this.last = this.clock.now();
    const lans = new Set(mine.map((t) => lan(t.host)));
    // A peer's UDP TA on the host its edge to us comes from is known to be reachable (a public
    // node, or the NAT we already talk through); others may be private addresses behind NATs.
    const sure: TransportAddress[] = [], maybe: TransportAddress[] = [];
    for (const c of this.table.all()) {
      const udp = c.peerTAs.filter((t) => t.kind === 'udp' && !isLoopback(t.host) && !lans.has(lan(t.host)));
      const seen = c.edge.kind === 'tunnel' ? undefined : udp.find((t) => t.host === c.edge.remoteTA.host);
      if (seen) sure.push(seen); else if (udp[0]) maybe.push(udp[0]);
    }
    for (let i = 0; i < PEERS_PER_ROUND && sure.length + maybe.length > 0; i++) {
      const from = sure.length > 0 ? sure : maybe;
      void reflect(this.link, from.splice(this.random.int(from.length), 1)[0]!);
    }
  }
}
