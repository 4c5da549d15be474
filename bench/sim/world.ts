// A simulated overlay: N real Nodes (unchanged node code) on a SimNetwork, all driven by one
// VirtualClock and seeded random sources, so one seed gives one trace. Nodes join through
// node 0, a few per virtual 100 ms; with security on, each listener is wrapped in the real
// SecureEdgeListener and the node's address is its (seeded) key's; with 'null', in the
// NullSecureEdgeListener (same packets, no crypto). Every node runs the relay (tunnel)
// transport, as the shipped node does by default; a `nat` fraction of the nodes (never node 0)
// sits behind simulated NATs (src/transport/sim-nat.ts).
import { Address } from '../../src/address/address.js';
import { groupKey, Identity, NullSecureEdgeListener, SecureEdgeListener } from '../../src/edge/index.js';
import type { EdgeListener } from '../../src/transport/edge.js';
import type { NatEdgeListener, NatType } from '../../src/transport/sim-nat.js';
import { Node, type NodeOptions } from '../../src/node/node.js';
import { Mode } from '../../src/routing/ah-wire.js';
import { SimNetwork, type LatencyModel, type SimEdgeListener } from '../../src/transport/sim.js';
import { seededRandom, type RandomSource } from '../../src/util/random.js';
import { VirtualClock } from '../../src/util/virtual-clock.js';
import { wrongNeighbours } from '../ring-check.js';

export interface WorldOptions {
  nodes: number;
  seed: number;
  /** 'on': the real secure layer; 'null': NullSecureEdgeListener (same packets, no crypto). */
  /** 'on': the real secure edge; 'null': the null layer (same packets, no crypto); 'none': no layer, as bench:ring runs. */
  security: 'on' | 'null' | 'none';
  /** Fraction of the nodes behind a NAT (seeded choice, never node 0); default 0. */
  nat?: number;
  natType?: NatType;
  latency?: LatencyModel;
  loss?: number;
  /** Nodes started per virtual second (default 100: ten per 100 ms). */
  joinRate?: number;
  /** Virtual ms per delivery on one processor shared by all nodes (SimNetwork sharedCpuMs); default 0. */
  sharedCpuMs?: number;
  /** Extra node options (timers); default the shipped defaults, as bench:ring uses. */
  node?: Partial<NodeOptions>;
}

const NAMESPACE = 'sim';

export class SimWorld {
  readonly clock = new VirtualClock();
  readonly net: SimNetwork;
  /** All nodes, in join order; `joined` of them have been started. */
  readonly nodes: Node[] = [];
  readonly inner: SimEdgeListener[] = [];
  /** Per node: its NAT box, if it sits behind one. */
  readonly nats: (NatEdgeListener | undefined)[] = [];
  joined = 0;
  startErrors = 0;
  private readonly rnd: RandomSource;

  constructor(readonly o: WorldOptions) {
    if (!(Number.isInteger(o.nodes) && o.nodes >= 1)) throw new Error(`nodes must be a positive integer, got ${o.nodes}`);
    this.rnd = seededRandom(o.seed);
    this.net = new SimNetwork({ clock: this.clock, random: seededRandom(this.rnd.int(2 ** 32)), latency: o.latency ?? 'lan', loss: o.loss, sharedCpuMs: o.sharedCpuMs });
    const clock = this.net.processorClock(this.clock);
    const key = o.security === 'on' ? groupKey('brunet-sim', NAMESPACE) : undefined;
    const natRnd = seededRandom((o.seed ^ 0x5eed7a7) >>> 0 || 1);
    for (let i = 0; i < o.nodes; i++) {
      const random = seededRandom(this.rnd.int(2 ** 32) || 1);
      const nat = i > 0 && o.nat && natRnd.float() < o.nat ? this.net.natListener(o.natType ?? 'symmetric') : undefined;
      const inner = nat?.inner ?? this.net.listener();
      this.inner.push(inner);
      this.nats.push(nat);
      const identity = key ? Identity.fromPrivateKeys(random.bytes(32), random.bytes(32)) : undefined;
      const address = identity?.address ?? Address.random(random);
      const wrap = (l: EdgeListener): EdgeListener => identity
        ? new SecureEdgeListener(l, { identity, groupKey: key!, namespace: NAMESPACE, clock, random })
        : o.security === 'null' ? new NullSecureEdgeListener(l, { address, clock }) : l;
      const node = new Node({
        namespace: NAMESPACE, listeners: [wrap(nat ?? inner)], remoteTAs: i === 0 ? [] : [this.inner[0]!.ta], type: 'MultiNode',
        clock, random, address, tunnel: true, wrapTunnel: wrap, ...o.node,
      });
      node.rpc.register('bench.Hops', (_a, ctx) => ctx.hops);
      this.nodes.push(node);
    }
  }

  /** Schedules every node's start on the virtual clock. */
  scheduleJoins(): void {
    const gap = 1000 / (this.o.joinRate ?? 100);
    this.nodes.forEach((n, i) => this.clock.setTimeout(() => {
      this.joined++;
      n.start().catch(() => { this.startErrors++; });
    }, i * gap));
  }

  get live(): Node[] { return this.nodes.slice(0, this.joined); }

  /** Fraction of the started nodes whose two nearest neighbours on each side are the true ones among the started. */
  consistency(): number {
    return this.joined === 0 ? 0 : 1 - wrongNeighbours(this.live) / this.joined;
  }

  /** Every node started and the ring of all of them correct. */
  consistent(): boolean { return this.joined === this.nodes.length && this.consistency() === 1; }

  /** Packets sent by all nodes so far (inner transport, so handshakes and AEAD overhead included). */
  packets(): number { return this.inner.reduce((s, l) => s + l.stats.packetsOut, 0); }

  /** Bytes sent by all nodes so far (inner transport). */
  bytes(): number { return this.inner.reduce((s, l) => s + l.stats.bytesOut, 0); }

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
