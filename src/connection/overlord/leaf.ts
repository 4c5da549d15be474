// Leaf overlord: links to the bootstrap RemoteTAs while the node is joining. Once the node
// is in the ring the wanted count decays to zero and leftover leaf links are closed.
import type { TransportAddress } from '../../transport/ta.js';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/log.js';
import { shuffled, type RandomSource } from '../../util/random.js';
import type { LinkManager } from '../link-manager.js';
import type { ConnectionTable } from '../table.js';
import type { Overlord } from './overlord.js';

export interface LeafOptions { wanted: number; lingerMs: number; retryMinMs: number; retryMaxMs: number }
export const DEFAULT_LEAF_OPTIONS: LeafOptions = { wanted: 2, lingerMs: 60_000, retryMinMs: 1000, retryMaxMs: 30_000 };

export class LeafOverlord implements Overlord {
  private queue: TransportAddress[] = [];
  /** Keys of the bootstrap TAs being linked to now. */
  private readonly inFlight = new Set<string>();
  private backoff: number;
  private next = 0;
  private inRingSince = 0;

  constructor(
    private readonly remoteTAs: readonly TransportAddress[],
    private readonly table: ConnectionTable,
    private readonly link: LinkManager,
    private readonly isInRing: () => boolean,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly log: Logger,
    private readonly opts: LeafOptions = DEFAULT_LEAF_OPTIONS,
  ) {
    this.backoff = opts.retryMinMs;
  }

  activate(now: number): void {
    const leaves = [...this.table.all()].filter((c) => c.type === 'leaf');
    // A leaf carrying relay traffic (a node reachable only through it) is kept.
    const trimmable = leaves.filter((c) => !c.relayHeld(now));
    const inRing = this.isInRing();
    if (!inRing) this.inRingSince = 0;
    else if (this.inRingSince === 0) this.inRingSince = now;
    // Wanted leaves decay linearly to zero over the linger time once we are in the ring.
    const wanted = inRing ? Math.floor(this.opts.wanted * Math.max(0, 1 - (now - this.inRingSince) / this.opts.lingerMs)) : this.opts.wanted;
    if (leaves.length > wanted) {
      if (trimmable.length === 0) return;
      const oldest = trimmable.reduce((a, b) => (a.createdAt <= b.createdAt ? a : b));
      if (oldest.initiator) this.link.close(oldest, 'leaf no longer needed');
      return;
    }
    if (inRing || now < this.next) return;
    // Up to `wanted` bootstraps are tried at once (each TA once at a time), so one that is
    // down, whose attempt only ends when the handshake times out, does not hold up the join.
    const distinct = new Set(this.remoteTAs.map((ta) => ta.key)).size;
    while (leaves.length + this.inFlight.size < wanted && this.inFlight.size < distinct) {
      if (this.queue.length === 0) this.queue = shuffled(this.remoteTAs, this.random);
      const ta = this.queue.shift()!;
      if (!this.inFlight.has(ta.key)) this.try(ta);
    }
  }

  /**
   * Our own addresses changed (an interface came back, say the outer VPN's TAP under a nested
   * overlay): bootstraps that did not answer may answer now, so the back-off starts over.
   */
  retryNow(): void {
    this.backoff = this.opts.retryMinMs;
    this.next = 0;
  }

  private try(ta: TransportAddress): void {
    this.inFlight.add(ta.key);
    void this.link.connect({ tas: [ta] }, 'leaf').then((c) => {
      this.inFlight.delete(ta.key);
      if (c?.type === 'leaf') { this.backoff = this.opts.retryMinMs; return; }
      // No answer, or the peer is already linked to us another way: try later.
      if (!c) this.log.debug(`bootstrap ${ta} did not answer`);
      this.next = this.clock.now() + this.backoff * (0.5 + this.random.float());
      this.backoff = Math.min(this.opts.retryMaxMs, this.backoff * 2);
    });
  }
}
