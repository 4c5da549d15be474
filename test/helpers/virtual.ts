// Protocol tests in virtual time: nodes on a SimNetwork (LAN model) whose clock is one
// VirtualClock and whose random sources are seeded, so a test runs as fast as the CPU
// allows, without polling real time, and one seed gives one trace.
//
// A lab drives its clock in the background: virtual time moves on in steps of STEP_MS,
// each step running the events due and the promise continuations they start, for as long
// as the lab runs (stop() in the test's teardown; it also stops by itself after
// `limitMs` of virtual time). So a test awaits node operations as usual (`await
// dht.put(...)`), and waits with lab.waitFor / lab.sleep, which count virtual time.
import { Node, type NodeOptions } from '../../src/node/node.js';
import { SimNetwork, type LatencyModel, type SimEdgeListener } from '../../src/transport/sim.js';
import type { TransportAddress } from '../../src/transport/ta.js';
import { seededRandom, type RandomSource } from '../../src/util/random.js';
import { VirtualClock } from '../../src/util/virtual-clock.js';
import { FAST } from './ring.js';

const STEP_MS = 10;

export interface LabOptions {
  seed?: number;
  latency?: LatencyModel;
  loss?: number;
  /** Virtual time after which the lab stops driving its clock by itself (default 2 virtual hours). */
  limitMs?: number;
}

export class VirtualLab {
  readonly clock = new VirtualClock();
  readonly net: SimNetwork;
  private readonly rnd: RandomSource;
  private running = true;
  private readonly driving: Promise<void>;
  private readonly nodes: Node[] = [];
  private readonly listeners: SimEdgeListener[] = [];

  constructor(o: LabOptions = {}) {
    this.rnd = seededRandom(o.seed ?? 1);
    this.net = new SimNetwork({ clock: this.clock, random: this.random(), latency: o.latency ?? 'lan', loss: o.loss });
    const limit = o.limitMs ?? 2 * 3600_000;
    this.driving = (async () => {
      while (this.running && this.clock.now() < limit) await this.clock.advance(STEP_MS);
    })();
  }

  /** A fresh seeded random source, drawn from the lab's seed. */
  random(): RandomSource { return seededRandom(this.rnd.int(2 ** 32) || 1); }

  listener(): SimEdgeListener {
    const l = this.net.listener();
    this.listeners.push(l);
    return l;
  }

  /**
   * A crash as the network sees it (a socket that vanished): from now on every packet to or
   * from the node's lab listeners is lost and new edges to them fail; no close goes out.
   * The node's own timers go on until it is stopped.
   */
  crash(node: Node): void {
    const own = this.listeners.filter((l) => node.listeners.includes(l));
    for (const l of own) for (const m of this.listeners) if (m !== l) this.net.block(l.ta, m.ta);
  }

  /** Node options that put a node on this lab: its clock and a seeded random source. */
  env(): { clock: VirtualClock; random: RandomSource } { return { clock: this.clock, random: this.random() }; }

  /** Like startRing('memory'): n nodes with the FAST timers, each joining through the first (or `bootstrap`). */
  async startRing(n: number, opts: Partial<NodeOptions> & { namespace?: string; bootstrap?: readonly TransportAddress[] } = {}): Promise<Node[]> {
    const nodes: Node[] = [];
    let boot = opts.bootstrap;
    for (let i = 0; i < n; i++) {
      const listener = this.listener();
      const node = new Node({ ...FAST, ...this.env(), ...opts, namespace: opts.namespace ?? 'testns', listeners: [listener], remoteTAs: boot ?? [] });
      await node.start();
      if (!boot) boot = listener.localTAs();
      nodes.push(node);
      this.nodes.push(node);
    }
    return nodes;
  }

  /** Resolves after `ms` of virtual time. */
  sleep(ms: number): Promise<void> { return new Promise((r) => { this.clock.setTimeout(r, ms); }); }

  /** Checks `cond` every `stepMs` of virtual time, for at most `limitMs`; true once it holds. */
  async waitFor(cond: () => boolean, limitMs: number, stepMs = 50): Promise<boolean> {
    const end = this.clock.now() + limitMs;
    while (this.clock.now() < end) {
      if (cond()) return true;
      if (!this.running) break;
      await this.sleep(stepMs);
    }
    return cond();
  }

  /** Virtual ms since the lab began. */
  now(): number { return this.clock.now(); }

  /** Stops the nodes started by startRing, then the clock (the test's teardown). */
  async stop(): Promise<void> {
    if (this.running) await Promise.all(this.nodes.map((n) => n.stop().catch(() => {})));
    this.running = false;
    await this.driving;
  }
}
