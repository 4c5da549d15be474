// The simulator's network: in-memory edges (the shape of memory.ts) whose packets arrive
// after a per-pair latency on an injected Clock (the simulator's VirtualClock), never on the
// runtime's timers. Each listener gets synthetic 2-D coordinates; the one-way latency
// between two is a fixed base plus their distance ('wan'), or about 0.2 ms ('lan').
// Loss is drawn from the seeded random source. Addresses: brunet.function://sim:<n>.
import type { Clock } from '../util/clock.js';
import type { RandomSource } from '../util/random.js';
import { newStats, type Edge, type EdgeListener, type TransportStats } from './edge.js';
import { TransportAddress, type TaKind } from './ta.js';

export type LatencyModel = 'lan' | 'wan';

export interface SimNetworkOptions {
  clock: Clock;
  random: RandomSource;
  latency?: LatencyModel;
  /** Probability in [0, 1] that a packet is lost. */
  loss?: number;
}

/** WAN model: coordinates uniform in a square of this side (ms); one-way = base + distance / 2. */
const WAN_SIDE_MS = 200;
const WAN_BASE_MS = 1;
const LAN_MS = 0.2;

class SimEdge implements Edge {
  readonly kind: TaKind = 'function';
  closed = false;
  twin: SimEdge | undefined;
  onPacket: (packet: Uint8Array, edge: Edge) => void = () => {};
  onClose: (edge: Edge, reason: string) => void = () => {};

  constructor(
    readonly owner: SimEdgeListener,
    readonly id: string,
    readonly localTA: TransportAddress,
    readonly remoteTA: TransportAddress,
    readonly inbound: boolean,
    /** One-way latency to the twin, ms. */
    readonly latency: number,
  ) {}

  send(packet: Uint8Array): void {
    const st = this.owner.stats;
    const twin = this.twin;
    if (this.closed || !twin) { st.sendErrors++; return; }
    st.packetsOut++;
    st.bytesOut += packet.length;
    const net = this.owner.network;
    if (net._lost()) { st.dropped++; return; }
    const copy = new Uint8Array(packet); // a sender may reuse its buffer
    net.clock.setTimeout(() => {
      if (twin.closed) return;
      const pst = twin.owner.stats;
      pst.packetsIn++;
      pst.bytesIn += copy.length;
      try { twin.onPacket(copy, twin); } catch { pst.handlerErrors++; }
    }, this.latency);
  }

  close(reason = 'closed'): void {
    if (this.closed) return;
    this._closed(reason);
    const twin = this.twin;
    if (twin) this.owner.network.clock.setTimeout(() => twin._closed('closed by peer'), this.latency);
  }

  /** @internal */
  _closed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.owner._remove(this);
    try { this.onClose(this, reason); } catch { this.owner.stats.handlerErrors++; }
  }
}

export interface SimTransportStats extends TransportStats {
  dropped: number;
  handlerErrors: number;
}

export class SimEdgeListener implements EdgeListener {
  readonly kind: TaKind = 'function';
  readonly stats: SimTransportStats = { ...newStats(), dropped: 0, handlerErrors: 0 };
  readonly ta: TransportAddress;
  onEdge: (edge: Edge) => void = () => {};
  private started = false;
  private readonly edges = new Set<SimEdge>();
  private seq = 0;

  constructor(readonly network: SimNetwork, readonly port: number, readonly x: number, readonly y: number) {
    this.ta = new TransportAddress('function', 'sim', port);
  }

  get edgeCount(): number { return this.edges.size; }
  localTAs(): TransportAddress[] { return this.started ? [this.ta] : []; }

  async start(): Promise<void> {
    if (this.started) throw new Error(`sim port ${this.port}: listener already started`);
    this.network._attach(this);
    this.started = true;
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.network._detach(this);
    for (const e of [...this.edges]) e.close('listener stopped');
  }

  /** Like a UDP socket: the local end exists at once; the far end learns of it with the first packet's latency. */
  createEdge(ta: TransportAddress): Promise<Edge> {
    if (ta.kind !== 'function') return Promise.reject(new Error(`sim listener cannot reach ${ta} (kind ${ta.kind})`));
    if (!this.started) return Promise.reject(new Error('sim listener not started'));
    return new Promise((resolve, reject) => {
      this.network.clock.setTimeout(() => {
        const target = this.network._lookup(ta);
        if (!this.started) return reject(new Error(`sim connect to ${ta}: listener stopped`));
        if (!target) return reject(new Error(`sim connect to ${ta}: connection refused`));
        const lat = this.network.latency(this, target);
        const local = this._newEdge(target.ta, false, lat);
        const remote = target._newEdge(this.ta, true, lat);
        local.twin = remote;
        remote.twin = local;
        // onEdge runs before resolve and before any packet, matching the other transports.
        try { target.onEdge(remote); } catch { target.stats.handlerErrors++; }
        resolve(local);
      }, 0);
    });
  }

  /** @internal */
  _newEdge(remoteTA: TransportAddress, inbound: boolean, latency: number): SimEdge {
    const e = new SimEdge(this, `sim/${this.port}/${++this.seq}`, this.ta, remoteTA, inbound, latency);
    this.edges.add(e);
    return e;
  }

  /** @internal */
  _remove(e: SimEdge): void { this.edges.delete(e); }
}

export class SimNetwork {
  readonly clock: Clock;
  readonly model: LatencyModel;
  private readonly random: RandomSource;
  private readonly loss: number;
  private readonly listeners = new Map<number, SimEdgeListener>();
  private nextPort = 1;

  constructor(o: SimNetworkOptions) {
    this.clock = o.clock;
    this.random = o.random;
    this.model = o.latency ?? 'wan';
    this.loss = o.loss ?? 0;
    if (!(this.loss >= 0 && this.loss <= 1)) throw new Error(`loss ${this.loss} not in [0, 1]`);
  }

  /** A new listener with the next port and random coordinates (drawn from the network's seeded source). */
  listener(): SimEdgeListener {
    const side = this.model === 'wan' ? WAN_SIDE_MS : 0;
    return new SimEdgeListener(this, this.nextPort++, this.random.float() * side, this.random.float() * side);
  }

  /** One-way latency between two listeners, ms. */
  latency(a: SimEdgeListener, b: SimEdgeListener): number {
    if (this.model === 'lan') return LAN_MS;
    return WAN_BASE_MS + Math.hypot(a.x - b.x, a.y - b.y) / 2;
  }

  /** @internal */
  _lost(): boolean { return this.loss > 0 && this.random.float() < this.loss; }

  /** @internal */
  _attach(l: SimEdgeListener): void { this.listeners.set(l.port, l); }

  /** @internal */
  _detach(l: SimEdgeListener): void { if (this.listeners.get(l.port) === l) this.listeners.delete(l.port); }

  /** @internal */
  _lookup(ta: TransportAddress): SimEdgeListener | undefined {
    return ta.host === 'sim' ? this.listeners.get(ta.port) : undefined;
  }
}
