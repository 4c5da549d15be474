// A simulated overlay: N real Nodes (unchanged node code) on a SimNetwork, all driven by one
// VirtualClock and seeded random sources, so one seed gives one trace. Nodes join through
// node 0, a few per virtual 100 ms; with security on, each listener is wrapped in the real
// SecureEdgeListener and the node's address is its (seeded) key's; with 'null', in the
// NullSecureEdgeListener (same packets, no crypto). Every node runs the relay (tunnel)
// transport, as the shipped node does by default; a `nat` fraction of the nodes (never node 0)
// sits behind simulated NATs (src/transport/sim-nat.ts). For churn (churn.ts), nodes can
// crash (world.crash) and new ones join through any live nodes (world.spawn).
import { Address } from '../../src/address/address.js';
import { groupKey, Identity, NullSecureEdgeListener, SecureEdgeListener } from '../../src/edge/index.js';
import type { EdgeListener } from '../../src/transport/edge.js';
import type { NatEdgeListener, NatType } from '../../src/transport/sim-nat.js';
import { Node, type NodeOptions } from '../../src/node/node.js';
import { DhtService } from '../../src/dht/service.js';
import { TableStore } from '../../src/dht/store.js';
import { Mode } from '../../src/routing/ah-wire.js';
import type { TransportAddress } from '../../src/transport/ta.js';
import { LAN_MS, SimNetwork, type LatencyModel, type SimEdgeListener } from '../../src/transport/sim.js';
import { seededRandom, type RandomSource } from '../../src/util/random.js';
import { VirtualClock } from '../../src/util/virtual-clock.js';
import { LoopClock } from './loop-clock.js';
import { wrongNeighbours } from '../ring-check.js';

export interface WorldOptions {
  nodes: number;
  seed: number;
  /** 'on': the real secure edge; 'null': the null layer (same packets, no crypto); 'none': no layer, as bench:ring runs. */
  security: 'on' | 'null' | 'none';
  /** Fraction of the nodes behind a NAT (seeded choice, never node 0); default 0. */
  nat?: number;
  natType?: NatType;
  latency?: LatencyModel;
  loss?: number;
  /** Nodes started per virtual second (default 100: ten per 100 ms). */
  joinRate?: number;
  /** Real ms elapsed: given, the clock is one serial processor that charges each event what it took (bench/sim/processor.ts). */
  meter?: () => number;
  /** With meter: the loop processor (loop-clock.ts: passes like libuv's) instead of the serial one. */
  loop?: boolean;
  /** With loop: the share of a core the modelled process had (LoopClock share); default 1. */
  share?: number;
  /** With meter: receive buffers that hold this many datagrams of a size (SimNetwork rcvbuf). */
  rcvbuf?: (bytes: number) => number;
  /** With meter: ms of I/O work charged per delivered packet (a real socket's send, receive and dispatch). */
  ioMs?: number;
  /** Extra node options (timers); default the shipped defaults, as bench:ring uses. */
  node?: Partial<NodeOptions>;
  /** Attach the DHT (a DhtService on an in-memory store) to every node. */
  dht?: boolean;
}

const NAMESPACE = 'sim';

export class SimWorld {
  readonly clock: VirtualClock;
  readonly net: SimNetwork;
  /** The initial N nodes, in join order; `joined` of them have been started (crashed ones stay here). */
  readonly nodes: Node[] = [];
  /** Their listeners below any security layer (traffic counters). */
  readonly inner: SimEdgeListener[] = [];
  /** Per node: its NAT box, if it sits behind one. */
  readonly nats: (NatEdgeListener | undefined)[] = [];
  joined = 0;
  startErrors = 0;
  /** Nodes started by spawn() (joiners after the initial N) and nodes crashed. */
  spawned = 0;
  deaths = 0;
  /** Live joiners, in join order (the initial N stay in `nodes`, dead or alive). */
  readonly joiners: Node[] = [];
  /** Each node's DHT, while it lives (dht option). */
  readonly dhts = new Map<Node, DhtService>();
  private readonly gone = new WeakSet<Node>();
  private readonly ready = new WeakSet<Node>();
  private readonly innerOf = new Map<Node, SimEdgeListener>();
  /** Traffic of crashed joiners, up to their death (their listeners are dropped). */
  private retired = { packets: 0, bytes: 0 };
  private readonly natOf = new Map<Node, NatEdgeListener>();
  private readonly key: Uint8Array | undefined;
  private readonly natRnd: RandomSource;
  private readonly rnd: RandomSource;

  constructor(readonly o: WorldOptions) {
    if (!(Number.isInteger(o.nodes) && o.nodes >= 1)) throw new Error(`nodes must be a positive integer, got ${o.nodes}`);
    this.rnd = seededRandom(o.seed);
    const loop = o.loop && o.meter ? new LoopClock(0, o.meter, undefined, o.share) : undefined;
    this.clock = loop ?? new VirtualClock(0, o.meter);
    // Every packet on the LAN model is a timer for the one latency: a FIFO lane, not the heap (same order).
    if ((o.latency ?? 'lan') === 'lan') this.clock.fifo(LAN_MS);
    this.net = new SimNetwork({ clock: this.clock, random: seededRandom(this.rnd.int(2 ** 32)), latency: o.latency ?? 'lan', loss: o.loss, rcvbuf: o.rcvbuf,
      onDelivery: o.ioMs ? () => this.clock.charge(o.ioMs!) : undefined, io: loop && ((to, ms, admit, fn) => loop.deliver(to, ms, admit, fn)) });
    this.key = o.security === 'on' ? groupKey('brunet-sim', NAMESPACE) : undefined;
    this.natRnd = seededRandom((o.seed ^ 0x5eed7a7) >>> 0 || 1);
    for (let i = 0; i < o.nodes; i++) {
      const node = this.build(i === 0 ? [] : [this.inner[0]!.ta], i > 0);
      this.inner.push(this.innerOf.get(node)!);
      this.nats.push(this.natOf.get(node));
      this.nodes.push(node);
    }
  }

  /** One node with its own seeded random source, listener and (with security) identity. */
  /** A node (not started): seeded keys, its security layer, the relay transport, maybe a NAT. */
  private build(remoteTAs: TransportAddress[], natable = true): Node {
    const random = seededRandom(this.rnd.int(2 ** 32) || 1);
    const nat = natable && this.o.nat && this.natRnd.float() < this.o.nat ? this.net.natListener(this.o.natType ?? 'symmetric') : undefined;
    const inner = nat?.inner ?? this.net.listener();
    const key = this.key, clock = this.clock;
    const identity = key ? Identity.fromPrivateKeys(random.bytes(32), random.bytes(32)) : undefined;
    const address = identity?.address ?? Address.random(random);
    const wrap = (l: EdgeListener): EdgeListener => identity
      ? new SecureEdgeListener(l, { identity, groupKey: key!, namespace: NAMESPACE, clock, random })
      : this.o.security === 'null' ? new NullSecureEdgeListener(l, { address, clock }) : l;
    const node = new Node({
      namespace: NAMESPACE, listeners: [wrap(nat ?? inner)], remoteTAs, type: 'MultiNode',
      clock, random, address, tunnel: true, wrapTunnel: wrap, ...this.o.node,
    });
    node.rpc.register('bench.Hops', (_a, ctx) => ctx.hops);
    this.innerOf.set(node, inner);
    if (nat) this.natOf.set(node, nat);
    return node;
  }

  /** Starts a node (and its DHT store first, with the dht option). */
  private launch(n: Node): void {
    if (!this.o.dht) { n.start().catch(() => { this.startErrors++; }); return; }
    const store = TableStore.memory({ clock: this.clock });
    this.dhts.set(n, new DhtService(n, store));
    store.open().then(() => n.start()).catch(() => { this.startErrors++; });
  }

  /** A new node (fresh address and random source) joining through these TAs; started now. */
  spawn(bootstraps: TransportAddress[]): Node {
    const n = this.build(bootstraps);
    this.joiners.push(n);
    this.spawned++;
    this.launch(n);
    return n;
  }

  /** The simulated network address of a node (what a joiner bootstraps through). */
  ta(n: Node): TransportAddress { return this.innerOf.get(n)!.ta; }

  isAlive(n: Node): boolean { return !this.gone.has(n); }

  /** A node counts as joined once its status has been 'connected' (seen here), until it crashes. */
  hasJoined(n: Node): boolean {
    if (this.ready.has(n)) return true;
    if (n.status !== 'connected') return false;
    this.ready.add(n);
    return true;
  }

  /**
   * A uniformly random live node (with `joined`: one that has joined) without building the
   * live list (rejection sampling, bounded: undefined when 256 draws found none).
   */
  pickLive(random: RandomSource, joined = false): Node | undefined {
    const a = this.joined, total = a + this.joiners.length;
    for (let i = 0; total > 0 && i < 256; i++) {
      const k = random.int(total);
      const n = k < a ? this.nodes[k]! : this.joiners[k - a]!;
      if (!this.gone.has(n) && (!joined || this.hasJoined(n))) return n;
    }
    return undefined;
  }

  /**
   * Crashes a node: its listener vanishes without a packet (MemoryEdgeListener.crash: peers
   * are not told, packets to it are dropped, connects refused), then the node and its DHT are
   * stopped only so their timers end; whatever they try to send then goes nowhere.
   */
  crash(n: Node): void {
    if (this.gone.has(n)) return;
    this.gone.add(n);
    this.deaths++;
    const inner = this.innerOf.get(n)!;
    inner.crash();
    const dht = this.dhts.get(n);
    this.dhts.delete(n);
    void n.stop().catch(() => {}).then(() => dht?.close()).catch(() => {});
    const j = this.joiners.indexOf(n);
    if (j >= 0) {
      this.joiners.splice(j, 1);
      this.innerOf.delete(n);
      this.retired.packets += inner.stats.packetsOut;
      this.retired.bytes += inner.stats.bytesOut;
    }
  }

  /** Packets and bytes sent by every node so far, dead ones up to their death (inner transport). */
  traffic(): { packets: number; bytes: number } {
    let packets = this.retired.packets, bytes = this.retired.bytes;
    for (const l of this.inner) { packets += l.stats.packetsOut; bytes += l.stats.bytesOut; }
    for (const n of this.joiners) { const st = this.innerOf.get(n)!.stats; packets += st.packetsOut; bytes += st.bytesOut; }
    return { packets, bytes };
  }

  /** Schedules every node's start on the virtual clock. */
  scheduleJoins(): void {
    const gap = 1000 / (this.o.joinRate ?? 100);
    this.nodes.forEach((n, i) => this.clock.setTimeout(() => {
      this.joined++;
      this.launch(n);
    }, i * gap));
  }

  /** Started nodes that have not crashed. */
  get live(): Node[] {
    const all = this.joiners.length ? this.nodes.slice(0, this.joined).concat(this.joiners) : this.nodes.slice(0, this.joined);
    return this.deaths ? all.filter((n) => !this.gone.has(n)) : all;
  }

  /** Fraction of the live nodes whose two nearest neighbours on each side are the true ones among the live. */
  consistency(): number {
    const live = this.live;
    return live.length === 0 ? 0 : 1 - wrongNeighbours(live) / live.length;
  }

  /** Every node started and the ring of all of them correct. */
  consistent(): boolean { return this.joined === this.nodes.length && this.consistency() === 1; }

  /** Connections of started nodes, and how many of them run over a relay (tunnel) edge. */
  relayed(): { connections: number; relayed: number } {
    let connections = 0, relayed = 0;
    for (const n of this.live) for (const c of n.table.all()) { connections++; if (c.edge.kind === 'tunnel') relayed++; }
    return { connections, relayed };
  }

  /** `count` random exact-mode RPCs between started nodes, `inFlight` at a time; hop counts of the answered ones. */
  async hops(count: number, inFlight = 50): Promise<{ hops: number[]; failed: number }> {
    const live = this.live;
    const hops: number[] = [];
    let failed = 0;
    for (let i = 0; i < count; i += inFlight) {
      const batch = Array.from({ length: Math.min(inFlight, count - i) }, () => {
        const a = live[this.rnd.int(live.length)]!, b = live[this.rnd.int(live.length)]!;
        return a.rpc.call({ address: b.address, mode: Mode.Exact }, 'bench.Hops', [], { timeoutMs: 5000 })
          .then((h) => { hops.push(h as number); }, () => { failed++; });
      });
      await this.clock.until(Promise.all(batch), 60_000);
    }
    return { hops, failed };
  }
}
