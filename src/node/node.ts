// A Brunet node: one event loop's worth of state — listeners, connection table, link
// layer, router, RPC and the three overlords — wired together. Nothing here is shared
// with other nodes in the same process.
import { Address } from '../address/address.js';
import { LinkManager, DEFAULT_LINK_OPTIONS, type LinkOptions } from '../connection/link-manager.js';
import { MAX_NODEINFO_TAS, type NodeInfo } from '../connection/node-info.js';
import { LeafOverlord, DEFAULT_LEAF_OPTIONS, type LeafOptions } from '../connection/overlord/leaf.js';
import { NearOverlord, DEFAULT_NEAR_OPTIONS, type NearOptions } from '../connection/overlord/near.js';
import { estimateSize } from '../connection/overlord/overlord.js';
import { ShortcutOverlord, DEFAULT_SHORTCUT_OPTIONS, type ShortcutOptions } from '../connection/overlord/shortcut.js';
import { ConnectionTable } from '../connection/table.js';
import { revalidate } from '../connection/link-repair.js';
import { NatHistory } from '../connection/nat-history.js';
import { NatReflector } from '../connection/nat-reflect.js';
import type { RelayUpgrader } from '../connection/relay-upgrade.js';
import { TunnelEdgeListener, type TunnelOptions } from '../connection/tunnel.js';
import { Router } from '../routing/router.js';
import { RpcManager } from '../rpc/rpc-manager.js';
import type { EdgeListener } from '../transport/edge.js';
import type { TransportAddress } from '../transport/ta.js';
import { realClock, type Clock, type TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { cryptoRandom, type RandomSource } from '../util/random.js';
import { RpcConnector } from './connector.js';
import { registerInfoHandlers } from './info.js';

export interface NodeOptions {
  namespace: string;
  address?: Address;
  listeners: EdgeListener[];
  remoteTAs?: readonly TransportAddress[];
  clock?: Clock;
  random?: RandomSource;
  log?: Logger;
  /** Reported as Information.Info's `type`. */
  type?: string;
  heartbeatMs?: number;
  link?: Partial<LinkOptions>;
  near?: Partial<NearOptions>;
  shortcut?: Partial<ShortcutOptions>;
  leaf?: Partial<LeafOptions>;
  /** Adds a relay (tunnel) listener after `listeners`; its TA is advertised last. */
  tunnel?: boolean | Partial<TunnelOptions>;
  /** Wraps the tunnel listener (the CLI passes its secureListener wrapper) before use. */
  wrapTunnel?: (l: EdgeListener) => EdgeListener;
}

export type NodeState = 'offline' | 'joining' | 'connected' | 'leaving' | 'disconnected';

/** How often the overlords run when nothing else wakes them. */
const DEFAULT_HEARTBEAT_MS = 1000;

export class Node {
  readonly address: Address;
  readonly namespace: string;
  readonly listeners: EdgeListener[];
  /** The raw tunnel listener (stats), when enabled; `listeners` holds it, possibly wrapped. */
  readonly tunnel?: TunnelEdgeListener;
  /** Our address as peers see it (NAT mappings), advertised in info(). */
  readonly nat = new NatHistory();
  private localSig?: string;
  private readonly reflector: NatReflector;
  readonly table: ConnectionTable;
  readonly link: LinkManager;
  readonly router: Router;
  readonly rpc: RpcManager;
  readonly near: NearOverlord;
  readonly shortcuts: ShortcutOverlord;
  readonly leaf: LeafOverlord;
  /** ConnectTo over the overlay; services (the VPN's on-demand links) use it too. */
  readonly connector: RpcConnector;
  readonly clock: Clock;
  /** The injected random source (seeded in the simulator, so one seed gives one trace). */
  readonly random: RandomSource;
  readonly log: Logger;
  readonly type: string;
  /** Services' last words before the node leaves (DHT handoff); bounded to about 1 s. */
  readonly beforeLeave: (() => Promise<void>)[] = [];
  private state: NodeState = 'offline';
  private heartbeat?: TimerHandle;
  private soon?: TimerHandle;
  private readonly heartbeatMs: number;

  constructor(o: NodeOptions) {
    const clock = this.clock = o.clock ?? realClock;
    const random = this.random = o.random ?? cryptoRandom;
    this.address = o.address ?? Address.random(random);
    this.namespace = o.namespace;
    this.type = o.type ?? 'BasicNode';
    this.heartbeatMs = o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const log = this.log = (o.log ?? silentLogger).child(this.address.key.slice(12, 20));
    // The tunnel listener must be in the list the LinkManager sees, but needs the table and
    // link layer, which need the list: it is created here and attach()ed below.
    if (o.tunnel) {
      this.tunnel = new TunnelEdgeListener(clock, random, o.tunnel === true ? {} : o.tunnel, log);
      this.listeners = [...o.listeners, o.wrapTunnel ? o.wrapTunnel(this.tunnel) : this.tunnel];
    } else {
      this.listeners = o.listeners;
    }
    this.table = new ConnectionTable(this.address, () => clock.now());
    this.link = new LinkManager({
      self: this.address, realm: o.namespace, table: this.table, listeners: this.listeners, localInfo: () => this.info(),
      neighborsFor: (peer) => this.near.reportFor(peer), clock, random, log,
    }, { ...DEFAULT_LINK_OPTIONS, ...o.link });
    this.reflector = new NatReflector(this.table, this.link, () => this.listeners.flatMap((l) => l.localTAs()), () => this.nat.size > 0, clock, random);
    this.router = new Router(this.address, this.table, () => this.sizeEstimate(), log);
    this.rpc = new RpcManager(this.address, this.router, clock, random, log);
    const connector = this.connector = new RpcConnector(this, (from, infos) => this.near.learn(from, infos));
    this.near = new NearOverlord(this.table, this.link, connector, clock, random, log, { ...DEFAULT_NEAR_OPTIONS, ...o.near });
    this.shortcuts = new ShortcutOverlord(this.table, this.link, connector, clock, random, log, () => this.sizeEstimate(),
      { ...DEFAULT_SHORTCUT_OPTIONS, ...o.shortcut });
    this.leaf = new LeafOverlord(o.remoteTAs ?? [], this.table, this.link, () => this.near.isConnected(), clock, random, log,
      { ...DEFAULT_LEAF_OPTIONS, ...o.leaf });
    const upgrader = this.tunnel?.attach({ address: this.address, table: this.table, link: this.link, connector, onUpgradeFailed: () => this.reflector.soon() });
    this.wire(upgrader);
    connector.registerHandler();
    registerInfoHandlers(this, random);
    this.table.onChange((ev, c) => {
      this.sizeCache = undefined;
      if (ev === 'remove' && !this.link.leaving) this.near.lost(c);
      this.activateSoon();
    });
  }

  /** Every listener of the link layer's events, in one place. */
  private wire(upgrader?: RelayUpgrader): void {
    const { events } = this.link, tunnel = this.tunnel;
    events.on('routed', (p, from) => this.router.receive(p, from));
    events.on('neighbors', (from, list) => this.near.learn(from, list));
    events.on('observedTA', (ta, from) => { this.nat.record(ta, this.clock.now(), from.key); this.link.announceSoon(); });
    // A reset means that peer no longer knows our edge. If it is because our NAT's public
    // address changed (nothing changes locally), our other edges are dead as well: check them
    // all now, at most every few seconds, rather than wait for their keepalive timeouts.
    let lastCheck = -Infinity;
    events.on('peerReset', () => {
      if (this.clock.now() - lastCheck < 5000) return;
      lastCheck = this.clock.now();
      revalidate(this.link);
    });
    if (tunnel) events.on('relay', (p, from) => tunnel.onFrame(p, from));
    if (upgrader) {
      events.on('punch', (from, dial) => upgrader.onPunch(from, dial));
      events.on('peerTAs', (c) => upgrader.retrySoon(c));
      events.on('announced', () => upgrader.retryAll());
    }
  }

  /**
   * This node's NodeInfo: the public views of it that peers reported (NAT mappings), its
   * listeners' own TAs, and its relay TA last.
   */
  info(): NodeInfo {
    const local = this.listeners.filter((l) => l.kind !== 'tunnel').flatMap((l) => l.localTAs());
    const relay = this.listeners.filter((l) => l.kind === 'tunnel').flatMap((l) => l.localTAs());
    // A NodeInfo carries 12 TAs at most: the relay TA must not be the one cut off.
    const direct = [...this.nat.advertised(this.clock.now(), local), ...local].slice(0, MAX_NODEINFO_TAS - relay.length);
    const tas = [...direct, ...relay];
    // The same NodeInfo while the TAs are the same: every connection keeps the TA list it was
    // last told (status-news.ts), and our NodeInfo's encoding is cached by that list's identity.
    const last = this.lastInfo;
    if (last && last.tas.length === tas.length && last.tas.every((t, i) => t.key === tas[i]!.key)) return last;
    return this.lastInfo = { address: this.address, tas };
  }

  private lastInfo: NodeInfo | undefined = undefined;
  private sizeCache?: number;
  /** Recomputed only when the table changes: routing asks for it on every packet it originates. */
  sizeEstimate(): number { return this.sizeCache ??= estimateSize(this.table); }

  get status(): NodeState {
    if (this.state === 'joining' || this.state === 'connected') return this.near.isConnected() ? 'connected' : 'joining';
    return this.state;
  }

  async start(): Promise<void> {
    if (this.state !== 'offline') throw new Error('node already started');
    for (const l of this.listeners) await l.start();
    this.state = 'joining';
    this.link.start();
    this.reflector.start();
    this.heartbeat = this.clock.setInterval(() => { this.checkAddresses(); this.activate(); }, this.heartbeatMs);
    this.activate();
  }

  /** Clean leave: neighbours are told (with replacements) before the sockets close. */
  async stop(): Promise<void> {
    if (this.state === 'disconnected' || this.state === 'offline') { this.state = 'disconnected'; return; }
    this.state = 'leaving';
    this.heartbeat?.cancel();
    this.soon?.cancel();
    if (this.beforeLeave.length > 0) {
      let timer: TimerHandle | undefined;
      await Promise.race([
        Promise.all(this.beforeLeave.map((f) => f().catch((e) => this.log.warn(`before leave: ${(e as Error).message}`)))),
        new Promise<void>((r) => { timer = this.clock.setTimeout(r, 1200); }),
      ]);
      timer?.cancel();
    }
    this.reflector.stop();
    this.link.leave();
    this.link.stop();
    await Promise.all(this.listeners.map((l) => l.stop().catch(() => {})));
    this.state = 'disconnected';
  }

  /**
   * Our own address changed (DHCP renew, roaming): what peers saw of the old one is void, and
   * edges bound to it are probably dead. Connections that do not answer a ping at once are
   * closed, so the overlords re-link from the new address now rather than after the timeout,
   * and a node still joining tries its bootstraps at once rather than after its back-off.
   */
  private checkAddresses(): void {
    const sig = this.listeners.filter((l) => l.kind !== 'tunnel').flatMap((l) => l.localTAs()).map((t) => t.key).join(' ');
    if (sig === this.localSig) return;
    const first = this.localSig === undefined;
    this.localSig = sig;
    if (first) return;
    this.log.info(`local addresses changed: ${sig}`);
    this.nat.clear();
    revalidate(this.link);
    this.leaf.retryNow();
  }

  private activateSoon(): void {
    if (this.soon || this.state !== 'joining') return;
    this.soon = this.clock.setTimeout(() => { this.soon = undefined; this.activate(); }, 20);
  }

  private activate(): void {
    if (this.state !== 'joining') return;
    const now = this.clock.now();
    try {
      this.leaf.activate(now);
      this.near.activate(now);
      this.shortcuts.activate(now);
    } catch (e) {
      this.log.error(`overlord: ${(e as Error).stack}`);
    }
  }
}
