// In-memory transport for fast tests: listeners attach to a shared MemoryNetwork and
// are addressed as brunet.function://localhost:<n>. Delivery is always asynchronous
// (setImmediate by default) so code that works here does not silently rely on re-entrancy that a
// real socket would never give it. Loss, partitions and an interceptor (an on-path
// attacker or observer that sees, drops, replaces or adds packets) are injectable, and so is
// the timing: the simulator (sim.ts) delivers after a per-pair latency on its virtual clock.
import type { RandomSource } from '../util/random.js';
import { newStats, RESETS_PER_SECOND, type Edge, type EdgeListener, type TransportStats } from './edge.js';
import { TransportAddress, type TaKind } from './ta.js';

export interface MemoryTransportStats extends TransportStats {
  /** Packets dropped by injected loss, a partition or the interceptor. */
  dropped: number;
  /** Exceptions thrown by onEdge/onPacket/onClose handlers (swallowed). */
  handlerErrors: number;
}

/** When packets, connects and closes arrive: after `latency(a, b)` ms, through `schedule`. */
export interface MemoryTiming {
  /** `packet`: the delivery is a datagram of `bytes` to the listener `to` (a packet, close or reset; not a connect). */
  schedule(fn: () => void, ms: number, packet?: { to: MemoryEdgeListener; bytes: number }): void;
  /** One-way latency between two listeners, ms. */
  latency(a: MemoryEdgeListener, b: MemoryEdgeListener): number;
  /** The time, ms, for the reset rate limit (without it resets are not limited). */
  now?(): number;
}

/** A close or reset counts as a datagram of the UDP header's size (udp.ts UDP_HEADER). */
export const CONTROL_BYTES = 10;

/** The default: every delivery on the next turn of the event loop. */
const NEXT_TURN: MemoryTiming = { schedule: (fn) => { setImmediate(fn); }, latency: () => 0 };

function guard(stats: MemoryTransportStats, fn: () => void): void {
  try { fn(); } catch { stats.handlerErrors++; }
}

class MemoryEdge implements Edge {
  readonly kind: TaKind = 'function';
  closed = false;
  twin: MemoryEdge | undefined;
  onPacket: (packet: Uint8Array, edge: Edge) => void = () => {};
  onClose: (edge: Edge, reason: string) => void = () => {};

  constructor(
    /** @internal */
    readonly owner: MemoryEdgeListener,
    readonly id: string,
    readonly localTA: TransportAddress,
    readonly remoteTA: TransportAddress,
    readonly inbound: boolean,
    /** One-way latency to the twin, ms. */
    private readonly latency: number,
  ) {}

  send(packet: Uint8Array): void {
    const st = this.owner.stats;
    const twin = this.twin;
    if (this.closed || !twin) { st.sendErrors++; return; }
    st.packetsOut++;
    st.bytesOut += packet.length;
    const net = this.owner.network;
    const verdict = net.intercept ? net.intercept(packet, this) : 'pass';
    if (verdict === 'pass') this.deliver(twin, packet);
    else if (verdict === 'drop') st.dropped++;
    else for (const p of verdict) this.deliver(twin, p);
  }

  private deliver(twin: MemoryEdge, packet: Uint8Array): void {
    if (this.owner.network._drops(this.localTA, this.remoteTA)) { this.owner.stats.dropped++; return; }
    // Copy so a sender reusing its buffer cannot alter what the receiver sees.
    const copy = new Uint8Array(packet); // a copy whatever the view type (Buffer.slice would share)
    this.owner.network.timing.schedule(() => {
      if (twin.closed) { twin.owner._refuse(this); return; }
      const pst = twin.owner.stats;
      pst.packetsIn++;
      pst.bytesIn += copy.length;
      try { twin.onPacket(copy, twin); } catch { pst.handlerErrors++; } // guard() inline: no closure per packet
    }, this.latency, { to: twin.owner, bytes: copy.length });
  }

  /**
   * Closes the edge and tells the peer with a close datagram, as UDP does: it is counted, and a
   * simulated receive buffer that is full drops it (the peer's edge then stays open until a
   * packet it sends draws a reset). Injected loss and partitions spare it.
   */
  close(reason = 'closed'): void {
    if (this.closed) return;
    this._closed(reason);
    const twin = this.twin;
    if (twin) this.owner._control(twin, 'close', this.latency);
  }

  /** @internal */
  _closed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.owner._remove(this);
    guard(this.owner.stats, () => this.onClose(this, reason));
  }
}

export class MemoryEdgeListener implements EdgeListener {
  readonly kind: TaKind = 'function';
  readonly stats: MemoryTransportStats = { dropped: 0, handlerErrors: 0, ...newStats() };
  readonly ta: TransportAddress;
  onEdge: (edge: Edge) => void = () => {};
  private started = false;
  private readonly edges = new Set<MemoryEdge>();
  private seq = 0;
  private resetWindow = 0;
  private resetsInWindow = 0;

  /** host: the TA's host part (the network's own host by default). */
  constructor(readonly network: MemoryNetwork, readonly port: number, host = network.host) {
    this.ta = new TransportAddress('function', host, port);
  }

  get edgeCount(): number { return this.edges.size; }
  get running(): boolean { return this.started; }
  localTAs(): TransportAddress[] { return this.started ? [this.ta] : []; }

  async start(): Promise<void> {
    if (this.started) throw new Error(`function port ${this.port}: listener already started`);
    this.network._attach(this);
    this.started = true;
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.network._detach(this);
    for (const e of [...this.edges]) e.close('listener stopped');
  }

  /**
   * A crashed process: the listener vanishes without a word on the wire. Its edges close here
   * (their onClose fires, reason 'crashed'); the far ends are not told, so their packets are
   * dropped on arrival until their own timeouts notice; new connects are refused.
   */
  crash(): void {
    if (!this.started) return;
    this.started = false;
    this.network._detach(this);
    for (const e of [...this.edges]) e._closed('crashed');
  }

  createEdge(ta: TransportAddress): Promise<Edge> {
    if (ta.kind !== 'function') return Promise.reject(new Error(`function listener cannot reach ${ta} (kind ${ta.kind})`));
    if (!this.started) return Promise.reject(new Error('function listener not started'));
    return new Promise((resolve, reject) => {
      this.network.timing.schedule(() => {
        const target = this.network._lookup(ta);
        if (!this.started) return reject(new Error(`function connect to ${ta}: listener stopped`));
        if (!target) return reject(new Error(`function connect to ${ta}: connection refused`));
        if (this.network.isBlocked(this.ta, target.ta)) return reject(new Error(`function connect to ${ta}: unreachable (partitioned)`));
        const latency = this.network.timing.latency(this, target);
        const local = this._newEdge(target.ta, false, latency);
        const remote = target._newEdge(this.ta, true, latency);
        local.twin = remote;
        remote.twin = local;
        // onEdge runs before resolve and before any packet, matching real transports.
        guard(target.stats, () => target.onEdge(remote));
        resolve(local);
      }, 0);
    });
  }

  /** @internal */
  _newEdge(remoteTA: TransportAddress, inbound: boolean, latency: number): MemoryEdge {
    const at = this.ta.host === this.network.host ? `${this.port}` : `${this.ta.host}:${this.port}`;
    const e = new MemoryEdge(this, `function/${at}/${++this.seq}`, this.ta, remoteTA, inbound, latency);
    this.edges.add(e);
    return e;
  }

  /** @internal */
  _remove(e: MemoryEdge): void { this.edges.delete(e); }

  /**
   * @internal A packet from `from` reached one of our edges after it closed: a running
   * listener answers with a reset (at most RESETS_PER_SECOND), as udp.ts answers a datagram
   * for an edge it does not know. A crashed or stopped one says nothing.
   */
  _refuse(from: MemoryEdge): void {
    if (!this.started) return;
    const now = this.network.timing.now?.();
    if (now !== undefined) {
      if (now - this.resetWindow >= 1000) { this.resetWindow = now; this.resetsInWindow = 0; }
      if (this.resetsInWindow >= RESETS_PER_SECOND) return;
      this.resetsInWindow++;
    }
    this._control(from, 'reset', this.network.timing.latency(this, from.owner));
  }

  /** @internal A close or reset datagram to the edge `to` (the twin of one of ours), `ms` away. */
  _control(to: MemoryEdge, kind: ControlKind, ms: number): void {
    this.stats.packetsOut++;
    this.stats.bytesOut += CONTROL_BYTES;
    this.network.onControl?.(kind);
    const dest = to.owner;
    this.network.timing.schedule(() => {
      if (!dest.started) return;
      dest.stats.packetsIn++;
      dest.stats.bytesIn += CONTROL_BYTES;
      to._closed(kind === 'close' ? 'closed by peer' : 'reset by peer');
    }, ms, { to: dest, bytes: CONTROL_BYTES });
  }
}

/** The datagrams that end an edge. */
export type ControlKind = 'close' | 'reset';

/**
 * What the interceptor does with one packet: deliver it ('pass'), drop it ('drop'), or
 * deliver these packets in its place, in order (an empty list drops; the list may hold the
 * original among packets of its own).
 */
export type InterceptVerdict = 'pass' | 'drop' | readonly Uint8Array[];

/**
 * Sees every packet an edge sends, synchronously inside send() and before loss and
 * partitions; `from` is the sending edge (its localTA and remoteTA name both ends). It may
 * send on any edge itself: such packets pass through it again.
 */
export type Interceptor = (packet: Uint8Array, from: Edge) => InterceptVerdict;

export class MemoryNetwork {
  /** An on-path attacker or observer for every edge of this network; unset, all packets pass. */
  intercept: Interceptor | undefined;
  /** Called for each close and reset datagram sent (an instrument: the interceptor sees only packets). */
  onControl: ((kind: ControlKind) => void) | undefined;
  /** Attached listeners by their TA's key. */
  private readonly listeners = new Map<string, MemoryEdgeListener>();
  /** Ports handed out (never reused), by host. */
  private readonly reserved = new Map<string, Set<number>>();
  private readonly blocked = new Set<string>();
  /** By host: where the search for an unused port starts. */
  private readonly nextPort = new Map<string, number>();
  private lossRate = 0;
  private lossRandom: RandomSource | undefined;

  /** timing: when deliveries happen (default: the next turn); host: the TAs' host part. */
  constructor(readonly timing: MemoryTiming = NEXT_TURN, readonly host = 'localhost') {}

  /**
   * Creates a listener; port omitted or 0 picks the next unused number. host: the TA's host
   * part, the network's own by default (the simulator adds hosts once one's ports run out).
   */
  listener(opts: { port?: number; host?: string } = {}): MemoryEdgeListener {
    const host = opts.host ?? this.host;
    let used = this.reserved.get(host);
    if (!used) this.reserved.set(host, used = new Set());
    let port = opts.port ?? 0;
    if (port === 0) {
      port = this.freePort(host, used);
      if (port > 65535) throw new Error(`function host ${host}: no unused port left`);
      this.nextPort.set(host, port + 1);
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`function port ${port} out of range 1-65535`);
    used.add(port);
    return new MemoryEdgeListener(this, port, host);
  }

  /** Whether `host` has no unused port left for listener() to pick. */
  full(host = this.host): boolean {
    const used = this.reserved.get(host);
    return used !== undefined && this.freePort(host, used) > 65535;
  }

  /** The next port on `host` that was never handed out (65536: none left). */
  private freePort(host: string, used: Set<number>): number {
    let port = this.nextPort.get(host) ?? 1;
    while (used.has(port)) port++;
    return port;
  }

  /** Drops each packet independently with probability p (0 disables). */
  setLossRate(p: number, random: RandomSource): void {
    if (!(p >= 0 && p <= 1)) throw new Error(`loss rate ${p} not in [0, 1]`);
    this.lossRate = p;
    this.lossRandom = random;
  }

  /** Partitions a from b (both directions): packets dropped, new edges refused. */
  block(a: TransportAddress, b: TransportAddress): void { this.blocked.add(pairKey(a, b)); }
  unblock(a: TransportAddress, b: TransportAddress): void { this.blocked.delete(pairKey(a, b)); }
  isBlocked(a: TransportAddress, b: TransportAddress): boolean { return this.blocked.has(pairKey(a, b)); }

  /** @internal */
  _drops(from: TransportAddress, to: TransportAddress): boolean {
    if (this.isBlocked(from, to)) return true;
    return this.lossRate > 0 && this.lossRandom!.float() < this.lossRate;
  }

  /** @internal */
  _attach(l: MemoryEdgeListener): void {
    const cur = this.listeners.get(l.ta.key);
    if (cur && cur !== l) throw new Error(`function port ${l.port}: address already in use`);
    this.listeners.set(l.ta.key, l);
  }

  /** @internal */
  _detach(l: MemoryEdgeListener): void {
    if (this.listeners.get(l.ta.key) === l) this.listeners.delete(l.ta.key);
  }

  /** @internal */
  _lookup(ta: TransportAddress): MemoryEdgeListener | undefined {
    return this.listeners.get(ta.key);
  }
}

function pairKey(a: TransportAddress, b: TransportAddress): string {
  return a.key < b.key ? `${a.key} ${b.key}` : `${b.key} ${a.key}`;
}
