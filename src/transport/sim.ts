// The simulator's network: the in-memory transport (memory.ts) with its deliveries scheduled
// on an injected Clock (the simulator's VirtualClock), never on the runtime's timers, after a
// per-pair latency. Each listener gets synthetic 2-D coordinates; the one-way latency between
// two is a fixed base plus half their distance ('wan'), or 0.2 ms ('lan'). Loss is drawn from
// the seeded random source. Addresses: brunet.function://sim:<n>. natListener() puts a
// listener behind a simulated NAT (sim-nat.ts).
import type { Clock } from '../util/clock.js';
import type { RandomSource } from '../util/random.js';
import { MemoryNetwork, type MemoryEdgeListener } from './memory.js';
import { RcvBuffers } from './sim-rcvbuf.js';
import { NatEdgeListener, type NatType } from './sim-nat.js';
import type { TransportAddress } from './ta.js';

export type LatencyModel = 'lan' | 'wan';
export type SimEdgeListener = MemoryEdgeListener;

export interface SimNetworkOptions {
  clock: Clock;
  random: RandomSource;
  latency?: LatencyModel;
  /** Probability in [0, 1] that a packet is lost. */
  loss?: number;
  /**
   * With a VirtualClock that has a meter (one serial processor): each listener's receive buffer
   * holds this many datagrams of a size; one that arrives at a full buffer is dropped (sim-rcvbuf.ts).
   */
  rcvbuf?: (bytes: number) => number;
  /** Called with each packet delivered (not dropped): a processor's per-packet I/O cost (VirtualClock.charge). */
  onDelivery?: () => void;
  /**
   * Deliveries as socket I/O instead of timers (the simulator's loop processor, which reads them
   * in passes): `to` is the receiving listener (this network for closes); when the
   * datagram is read, admit() says whether the receive buffer had kept it, then fn handles it.
   */
  io?: (to: object, ms: number, admit: () => boolean, fn: () => void) => void;
}

/** WAN model: coordinates uniform in a square of this side (ms); one-way = base + distance / 2. */
const WAN_SIDE_MS = 200;
const WAN_BASE_MS = 1;
/** The LAN model's one-way latency, ms. */
export const LAN_MS = 0.2;
const always = (): boolean => true;

export class SimNetwork extends MemoryNetwork {
  readonly model: LatencyModel;
  private readonly random: RandomSource;
  private readonly clock: Clock;
  private readonly coords = new WeakMap<MemoryEdgeListener, { x: number; y: number }>();
  /** The hosts listeners are on: `sim`, then `sim2`, `sim3`… as each one's 65,535 ports run out. */
  private readonly hosts = new Set<string>();
  private hostName: string;
  /** With the rcvbuf option: the listeners' receive buffers. */
  readonly rcvbufs: RcvBuffers<MemoryEdgeListener> | undefined;

  constructor(o: SimNetworkOptions) {
    const timing = {
      schedule: (fn: () => void, ms: number, packet?: { to: MemoryEdgeListener; bytes: number }) => {
        const buf = this.rcvbufs, io = o.onDelivery;
        if (!packet) {
          // With io, a connect (0 ms) completes within the event that asked for it, as a UDP
          // createEdge does (no packet: the peer learns of the edge from its first datagram).
          if (!o.io) o.clock.setTimeout(fn, ms);
          else if (ms === 0) queueMicrotask(fn);
          else o.io(this, ms, always, fn);
          return;
        }
        if (!buf && !io && !o.io) { o.clock.setTimeout(fn, ms); return; }
        const due = o.clock.now() + ms;
        const admit = (): boolean => {
          if (buf && !buf.admit(packet.to, packet.bytes, due, o.clock.now())) { packet.to.stats.dropped++; return false; }
          return true;
        };
        const handle = (): void => { io?.(); fn(); };
        if (o.io) o.io(packet.to, ms, admit, handle);
        else o.clock.setTimeout(() => { if (admit()) handle(); }, ms);
      },
      latency: (a: MemoryEdgeListener, b: MemoryEdgeListener) => model === 'lan' ? LAN_MS : this.latency(a, b),
      now: () => o.clock.now(),
    };
    const model = o.latency ?? 'wan';
    super(timing, 'sim');
    this.hostName = this.host;
    this.hosts.add(this.host);
    this.rcvbufs = o.rcvbuf ? new RcvBuffers(o.rcvbuf) : undefined;
    this.model = model;
    this.random = o.random;
    this.clock = o.clock;
    if (o.loss) this.setLossRate(o.loss, o.random);
  }

  /**
   * A new listener with the next port and random coordinates (drawn from the network's seeded
   * source). Ports are never reused, so a run that makes more than 65,535 listeners (100,000
   * nodes, or long churn) goes on to the next host.
   */
  override listener(): SimEdgeListener {
    if (this.full(this.hostName)) {
      this.hostName = `${this.host}${this.hosts.size + 1}`;
      this.hosts.add(this.hostName);
    }
    const l = super.listener({ host: this.hostName });
    const side = this.model === 'wan' ? WAN_SIDE_MS : 0;
    this.coords.set(l, { x: this.random.float() * side, y: this.random.float() * side });
    return l;
  }

  /** A new listener behind a NAT of this type (sim-nat.ts); `.inner` is the public listener. */
  natListener(type: NatType): NatEdgeListener {
    return new NatEdgeListener(this.listener(), type, this.clock, this.hosts.size - 1);
  }

  /** Only this network's own hosts are reachable: a NATed node's private TA is refused. */
  override _lookup(ta: TransportAddress): SimEdgeListener | undefined {
    return this.hosts.has(ta.host) ? super._lookup(ta) : undefined;
  }

  /** One-way latency between two listeners, ms. */
  latency(a: SimEdgeListener, b: SimEdgeListener): number {
    if (this.model === 'lan') return LAN_MS;
    const p = this.coords.get(a)!, q = this.coords.get(b)!;
    return WAN_BASE_MS + Math.hypot(p.x - q.x, p.y - q.y) / 2;
  }
}
