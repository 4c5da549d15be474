// NAT boxes for the simulator: a NatEdgeListener sits between a node and its SimNetwork
// listener. The node sees (and advertises) only a private TA, brunet.function://10.x.y.2:<port>
// (10.x.y.3 on the network's second host, and so on), which nobody can dial (SimNetwork refuses
// hosts other than its own); peers see the node's edges come from its public TA,
// brunet.function://sim:<port>, the inner listener's.
//
// Filtering, checked when each packet arrives (on the virtual clock):
//  * 'cone' (port-restricted): a packet is let in only from a remote TA this listener sent
//    to within the last NAT_MAPPING_MS, on any edge; an inbound edge is shown to the node
//    only when its first packet is let in (a peer's edge opened before we "punched" stays dark).
//  * 'symmetric': the mapping depends on the destination, and peers only ever learn one
//    mapping, so inbound edges are never let in: packets arrive only on edges this node
//    opened, from the TA it opened them to, within NAT_MAPPING_MS of its last send there.
//    Two NATed nodes can therefore never reach each other directly; only relays connect them.
// Dropped packets are counted; nothing is ever answered (a real NAT is silent).
import type { Clock } from '../util/clock.js';
import type { Edge, EdgeListener } from './edge.js';
import type { SimEdgeListener } from './sim.js';
import { TransportAddress, type TaKind } from './ta.js';

export type NatType = 'cone' | 'symmetric';
/** How long an outbound packet keeps the mapping (and the filter) open. */
export const NAT_MAPPING_MS = 60_000;

export interface NatStats {
  /** Packets the NAT let in / dropped. */
  admitted: number;
  dropped: number;
}

class NatEdge implements Edge {
  readonly id: string;
  readonly kind: TaKind = 'function';
  readonly localTA: TransportAddress;
  readonly remoteTA: TransportAddress;
  readonly inbound: boolean;
  /** Whether the node has been told about this edge (outbound ones: always). */
  shown: boolean;
  onPacket: (packet: Uint8Array, edge: Edge) => void = () => {};
  onClose: (edge: Edge, reason: string) => void = () => {};

  constructor(private readonly nat: NatEdgeListener, readonly inner: Edge) {
    this.id = `nat/${inner.id}`;
    this.localTA = nat.privateTA;
    this.remoteTA = inner.remoteTA;
    this.inbound = inner.inbound;
    this.shown = !inner.inbound;
    inner.onPacket = (p) => nat._arrive(this, p);
    inner.onClose = (_e, reason) => { if (this.shown) this.onClose(this, reason); };
  }

  get closed(): boolean { return this.inner.closed; }
  send(packet: Uint8Array): void {
    this.nat._sent(this.remoteTA);
    this.inner.send(packet);
  }
  close(reason?: string): void { this.inner.close(reason); }
}

export class NatEdgeListener implements EdgeListener {
  readonly kind: TaKind = 'function';
  readonly stats: NatStats = { admitted: 0, dropped: 0 };
  onEdge: (edge: Edge) => void = () => {};
  /** Tests: called for every packet let in, with its source TA, before the node sees it. */
  observe: ((from: TransportAddress, at: number) => void) | undefined;
  readonly privateTA: TransportAddress;
  /** Remote TA key → when we last sent to it. */
  private readonly sentTo = new Map<string, number>();

  /** host: the ordinal of the inner listener's host on the network (0 for the first), so private TAs stay distinct. */
  constructor(readonly inner: SimEdgeListener, readonly type: NatType, private readonly clock: Clock, host = 0) {
    const k = inner.port;
    this.privateTA = new TransportAddress('function', `10.${(k >> 8) & 255}.${k & 255}.${2 + host}`, k);
    inner.onEdge = (e) => { new NatEdge(this, e); };
  }

  /** The public TA peers see our edges come from. */
  get publicTA(): TransportAddress { return this.inner.ta; }
  get edgeCount(): number { return this.inner.edgeCount; }
  localTAs(): TransportAddress[] { return this.inner.running ? [this.privateTA] : []; }
  start(): Promise<void> { return this.inner.start(); }
  stop(): Promise<void> { return this.inner.stop(); }

  async createEdge(ta: TransportAddress): Promise<Edge> {
    return new NatEdge(this, await this.inner.createEdge(ta));
  }

  /** Whether a packet from `from` on this edge gets through now. */
  admits(e: NatEdge): boolean {
    if (this.type === 'symmetric' && e.inbound) return false;
    const t = this.sentTo.get(e.remoteTA.key);
    return t !== undefined && this.clock.now() - t <= NAT_MAPPING_MS;
  }

  /** @internal */
  _sent(to: TransportAddress): void { this.sentTo.set(to.key, this.clock.now()); }

  /** @internal */
  _arrive(e: NatEdge, p: Uint8Array): void {
    if (!this.admits(e)) { this.stats.dropped++; return; }
    this.stats.admitted++;
    this.observe?.(e.remoteTA, this.clock.now());
    if (!e.shown) {
      e.shown = true;
      this.onEdge(e);
    }
    e.onPacket(p, e);
  }
}
