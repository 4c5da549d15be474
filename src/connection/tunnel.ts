// TunnelEdgeListener (Brunet's TunnelEdgeListener / Relay): edges to a peer that cannot be
// reached directly, carried in RELAY frames through a forwarder both sides are connected
// to. To the layers above (secure wrapper, link handshake, routing) it is a plain Edge.
//
// * Advertising: localTAs() is `brunet.tunnel://<self>/<f1>+…+<f4>`: our nearest neighbour on
//   each side and our oldest connections, all over direct (non-tunnel) edges.
// * Creating: the initiator uses the listed forwarders it is itself connected to; with none,
//   it first asks one of them to link to it (ConnectTo through the overlay).
// * Forwarding: only to a peer we hold a direct connection with, never tunnel-in-tunnel,
//   source stamped from the incoming connection, and capped per source (token bucket).
// * Closing: an edge closes when none of its forwarders is connected any more; a forwarder
//   that cannot reach the target answers a data frame with a close frame.
// * Upgrade: relay-upgrade.ts keeps trying to move relayed connections to direct edges.
//
// Late binding: the listener is created before the Node (the LinkManager needs the full
// listener list) and attach()ed to the node's table/link once those exist.
import { Address } from '../address/address.js';
import { newStats, type Edge, type EdgeListener, type TransportStats } from '../transport/edge.js';
import { TransportAddress, type TaKind } from '../transport/ta.js';
import type { Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { RandomSource } from '../util/random.js';
import { WireError } from '../wire/value.js';
import type { Connection } from './connection.js';
import type { LinkManager } from './link-manager.js';
import type { Connector } from './overlord/overlord.js';
import { RelayUpgrader } from './relay-upgrade.js';
import { decodeRelay, encodeRelay, RelayType, stampSource, type RelayFrame } from './relay-wire.js';
import type { ConnectionTable } from './table.js';

export interface TunnelOptions {
  /** Relay bytes per second accepted from one source connection (burst: one second's worth). */
  maxRelayBytesPerSec: number;
  /** Forwarders listed in our tunnel TA. */
  advertisedForwarders: number;
  /** Open tunnel edges at most (inbound ones beyond are refused). */
  maxEdges: number;
  /** Mean period of the relay → direct upgrade attempt (jittered ±25 %); 0 disables it. */
  upgradeMs: number;
  /** A connection that carried relay traffic is kept from trimming for this long. */
  holdMs: number;
}

export const DEFAULT_TUNNEL_OPTIONS: TunnelOptions = {
  maxRelayBytesPerSec: 10_000_000, advertisedForwarders: 4, maxEdges: 1024, upgradeMs: 30_000, holdMs: 45_000,
};

export interface TunnelStats extends TransportStats {
  /** Frames forwarded for others, and their bytes. */
  relayed: number;
  relayedBytes: number;
  /** Frames dropped by the per-source cap. */
  capDrops: number;
  /** Frames for a target we hold no direct connection with. */
  noRoute: number;
  /** Frames naming an edge we do not have (or from the wrong peer). */
  unknownEdge: number;
  /** Frames that arrived over a tunnel edge (nesting is refused) or inbound edges beyond maxEdges. */
  refused: number;
  handlerErrors: number;
  /** Connections moved from a relay edge to a direct one. */
  upgrades: number;
}

/** What the listener needs from its node; supplied by attach(). */
export interface TunnelHost {
  address: Address;
  table: ConnectionTable;
  link: LinkManager;
  /** Used to get connected to a forwarder when no listed one is common. */
  connector?: Connector;
  /** A relay → direct upgrade failed (our NAT views may be stale). */
  onUpgradeFailed?: () => void;
}

const EMPTY = new Uint8Array(0);
const body = (a: Address): string => a.key.slice('brunet:node:'.length);

/** The relay TA of `target` through `forwarders`. */
export function tunnelTA(target: Address, forwarders: readonly Address[]): TransportAddress {
  return TransportAddress.tunnel(body(target), forwarders.map(body));
}
const direct = (c: Connection | undefined): c is Connection => !!c && c.edge.kind !== 'tunnel' && !c.edge.closed;

class TunnelEdge implements Edge {
  readonly kind: TaKind = 'tunnel';
  closed = false;
  remoteId = 0;
  onPacket: (packet: Uint8Array, edge: Edge) => void = () => {};
  onClose: (edge: Edge, reason: string) => void = () => {};
  constructor(
    private readonly owner: TunnelEdgeListener,
    readonly localId: number,
    readonly peerAddress: Address,
    /** Forwarders to try, in order of preference. */
    public forwarders: Address[],
    readonly localTA: TransportAddress,
    readonly remoteTA: TransportAddress,
    readonly inbound: boolean,
  ) {}
  get id(): string { return `tunnel/${this.localId}`; }
  send(packet: Uint8Array): void {
    if (this.closed) { this.owner.stats.sendErrors++; return; }
    this.owner._send(this, RelayType.Data, packet);
  }
  close(reason = 'closed'): void {
    if (this.closed) return;
    this.owner._send(this, RelayType.Close, EMPTY);
    this._closed(reason);
  }
  /** @internal */
  _closed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.owner._remove(this);
    try { this.onClose(this, reason); } catch { this.owner.stats.handlerErrors++; }
  }
}

export class TunnelEdgeListener implements EdgeListener {
  readonly kind: TaKind = 'tunnel';
  readonly stats: TunnelStats = { relayed: 0, relayedBytes: 0, capDrops: 0, noRoute: 0, unknownEdge: 0, refused: 0, handlerErrors: 0, upgrades: 0, ...newStats() };
  readonly opts: TunnelOptions;
  onEdge: (edge: Edge) => void = () => {};
  private host?: TunnelHost;
  private running = false;
  /** localTAs()'s answer until the connection table changes. */
  private advertised: TransportAddress[] | undefined;
  private readonly edges = new Map<number, TunnelEdge>();
  /** Inbound edges by `<peer key>/<peer's edge id>`, for frames sent before the peer learned our id. */
  private readonly inboundByRemote = new Map<string, TunnelEdge>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private upgrader?: RelayUpgrader;

  constructor(private readonly clock: Clock, private readonly random: RandomSource, opts: Partial<TunnelOptions> = {}, private readonly log: Logger = silentLogger) {
    this.opts = { ...DEFAULT_TUNNEL_OPTIONS, ...opts };
  }

  /**
   * Binds the listener to its node (once, before start). Returns its relay upgrader, whose
   * methods the node wires to the link layer's events along with receive().
   */
  attach(host: TunnelHost): RelayUpgrader {
    if (this.host) throw new Error('tunnel listener already attached');
    this.host = host;
    host.table.onChange((ev, c) => {
      this.advertised = undefined;
      if (ev === 'remove') this.lost(c);
    });
    return this.upgrader = new RelayUpgrader(host, this.clock, this.random, this.opts.upgradeMs, this.stats, this.log);
  }

  get edgeCount(): number { return this.edges.size; }

  /** The forwarders our relay edge to `peer` uses, preferred first (empty: no relay edge). */
  forwardersFor(peer: Address): Address[] {
    for (const e of this.edges.values()) if (!e.closed && e.peerAddress.equals(peer)) return [...e.forwarders];
    return [];
  }

  async start(): Promise<void> {
    if (!this.host) throw new Error('tunnel listener not attached to a node');
    this.running = true;
    this.upgrader!.start();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.upgrader?.stop();
    for (const e of [...this.edges.values()]) e.close('listener stopped');
  }

  localTAs(): TransportAddress[] {
    const h = this.host;
    if (!this.running || !h) return [];
    // NodeInfo asks on every link message and status; the answer changes only with the table.
    this.advertised ??= this.pickAdvertised(h);
    return [...this.advertised];
  }

  private pickAdvertised(h: TunnelHost): TransportAddress[] {
    const { left, right } = h.table.neighborsOf(h.address, 1);
    const picked = new Set<Connection>();
    // The nearest neighbour on each side (whoever routes to us knows them), then the oldest
    // other direct connections: the most stable, and usually to the public bootstrap nodes
    // that NAT'd peers can reach too.
    for (const c of [left[0], right[0]]) if (direct(c)) picked.add(c);
    // The table lists connections in the order they were added, which is their age order: the
    // first few do (a bootstrap node holds a leaf per joiner, and sorted them all per change).
    const fwds = [...picked].slice(0, this.opts.advertisedForwarders);
    for (const c of h.table.all()) {
      if (fwds.length >= this.opts.advertisedForwarders) break;
      if (direct(c) && !picked.has(c)) fwds.push(c);
    }
    return fwds.length === 0 ? [] : [tunnelTA(h.address, fwds.map((c) => c.address))];
  }

  async createEdge(ta: TransportAddress): Promise<Edge> {
    const h = this.host;
    if (ta.kind !== 'tunnel') throw new Error(`tunnel listener cannot reach ${ta} (kind ${ta.kind})`);
    if (!this.running || !h) throw new Error('tunnel listener not started');
    const parse = (b: string): Address | undefined => { try { return Address.parse(`brunet:node:${b}`); } catch { return undefined; } };
    const target = parse(ta.host);
    if (!target || target.equals(h.address)) throw new Error(`tunnel to ${ta}: bad target`);
    const listed = ta.forwarders.map(parse).filter((a): a is Address => !!a && !a.equals(h.address) && !a.equals(target));
    let common = listed.filter((a) => direct(h.table.get(a)));
    for (const f of listed) {
      if (common.length > 0 || !h.connector) break;
      // No forwarder in common: ask a listed one (through the overlay) to link to us.
      try { await h.connector.connectTo(f, 'greedy', 'structured.overlap'); } catch { /* try the next */ }
      common = listed.filter((a) => direct(h.table.get(a)));
    }
    if (common.length === 0) throw new Error(`tunnel to ${ta}: no forwarder in common`);
    if (!this.running) throw new Error('tunnel listener stopped');
    if (this.edges.size >= this.opts.maxEdges) throw new Error('too many tunnel edges');
    const e = new TunnelEdge(this, this.newId(), target, common,
      tunnelTA(h.address, [common[0]!]), ta, false);
    this.edges.set(e.localId, e);
    return e;
  }

  // ---- frames ----
  /** A relay frame from a linked peer (the link layer's `relay` event). */
  onFrame(p: Uint8Array, from: Connection): void {
    try { this.onRelay(p, from); } catch (e) { this.stats.handlerErrors++; this.log.warn(`relay: ${(e as Error).message}`); }
  }

  private onRelay(p: Uint8Array, from: Connection): void {
    const h = this.host!;
    let f: RelayFrame;
    try { f = decodeRelay(p); } catch (e) {
      this.stats.malformed++;
      if (!(e instanceof WireError)) this.log.warn(`relay decode: ${(e as Error).message}`);
      return;
    }
    // Tunnels never nest: a relay frame must arrive over a direct edge.
    if (from.edge.kind === 'tunnel') { this.stats.refused++; return; }
    // At the endpoint the source must be a third node, stamped by the forwarder `from`.
    if (f.target.equals(h.address)) { if (f.source.equals(from.address)) this.stats.refused++; else this.receive(f, from); }
    else this.forward(p, f, from);
  }

  private forward(p: Uint8Array, f: RelayFrame, from: Connection): void {
    const to = this.host!.table.get(f.target);
    if (!direct(to) || to === from) {
      this.stats.noRoute++;
      // Tell the sender at once, so its edge fails now rather than at the handshake timeout.
      // Never in answer to a close, so two forwarders cannot bounce frames between them.
      if (f.type === RelayType.Data) {
        from.edge.send(encodeRelay({ type: RelayType.Close, target: from.address, source: f.target, senderId: f.receiverId || 0xffffffff, receiverId: f.senderId, payload: EMPTY }));
      }
      return;
    }
    if (!this.take(from.address.key, p.length)) { this.stats.capDrops++; return; }
    const out = p.slice();
    stampSource(out, from.address);
    from.relayUntil = to.relayUntil = this.clock.now() + this.opts.holdMs;
    this.stats.relayed++;
    this.stats.relayedBytes += out.length;
    to.send(out);
  }

  /** Token bucket per source connection: one member cannot make us everyone's relay. */
  private take(key: string, n: number): boolean {
    const rate = this.opts.maxRelayBytesPerSec;
    const now = this.clock.now();
    const b = this.buckets.get(key) ?? { tokens: rate, at: now };
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) * rate) / 1000);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }

  private receive(f: RelayFrame, from: Connection): void {
    const h = this.host!;
    let e: TunnelEdge | undefined;
    if (f.receiverId !== 0) {
      e = this.edges.get(f.receiverId);
      if (!e || !e.peerAddress.equals(f.source) || (e.remoteId !== 0 && e.remoteId !== f.senderId && f.senderId !== 0xffffffff)) {
        this.stats.unknownEdge++;
        // The sender holds an edge we no longer have (we restarted, moved or closed it without
        // reaching it): tell it, as a UDP reset would, instead of letting it time out.
        if (f.type === RelayType.Data && !e) from.edge.send(encodeRelay({ type: RelayType.Close, target: f.source, source: h.address, senderId: f.receiverId, receiverId: f.senderId, payload: EMPTY }));
        return;
      }
      if (e.remoteId === 0 && f.senderId !== 0xffffffff) e.remoteId = f.senderId;
    } else {
      e = this.inboundByRemote.get(`${f.source.key}/${f.senderId}`);
      if (!e) {
        if (f.type !== RelayType.Data || f.source.equals(h.address)) { this.stats.unknownEdge++; return; }
        if (!this.running || this.edges.size >= this.opts.maxEdges) { this.stats.refused++; return; }
        e = new TunnelEdge(this, this.newId(), f.source, [from.address],
          tunnelTA(h.address, [from.address]), tunnelTA(f.source, [from.address]), true);
        e.remoteId = f.senderId;
        this.edges.set(e.localId, e);
        this.inboundByRemote.set(`${f.source.key}/${f.senderId}`, e);
        try { this.onEdge(e); } catch { this.stats.handlerErrors++; }
      }
    }
    if (f.type === RelayType.Close) { e._closed('closed by peer'); return; }
    from.relayUntil = this.clock.now() + this.opts.holdMs;
    // The path a frame just took works: prefer it for our answers.
    if (!e.forwarders[0]?.equals(from.address)) e.forwarders = [from.address, ...e.forwarders.filter((a) => !a.equals(from.address))];
    this.stats.packetsIn++;
    this.stats.bytesIn += f.payload.length;
    try { e.onPacket(f.payload, e); } catch { this.stats.handlerErrors++; }
  }

  /** @internal Sends one frame of edge e through its first connected forwarder. */
  _send(e: TunnelEdge, type: RelayType, payload: Uint8Array): void {
    const h = this.host!;
    const via = e.forwarders.map((a) => h.table.get(a)).find(direct);
    if (!via) { this.stats.sendErrors++; return; }
    const frame = encodeRelay({ type, target: e.peerAddress, source: h.address, senderId: e.localId, receiverId: e.remoteId, payload });
    this.stats.packetsOut++;
    this.stats.bytesOut += payload.length;
    via.relayUntil = this.clock.now() + this.opts.holdMs;
    via.send(frame);
  }

  /** @internal */
  _remove(e: TunnelEdge): void {
    this.edges.delete(e.localId);
    if (e.inbound) this.inboundByRemote.delete(`${e.peerAddress.key}/${e.remoteId}`);
  }

  private newId(): number {
    for (;;) {
      const id = 1 + this.random.int(0xfffffffe);
      if (!this.edges.has(id)) return id;
    }
  }

  /** A connection went away: edges left without any connected forwarder close. */
  private lost(c: Connection): void {
    this.buckets.delete(c.address.key);
    const h = this.host!;
    for (const e of [...this.edges.values()]) {
      if (!e.forwarders.some((a) => direct(h.table.get(a)))) e._closed('no forwarder left');
    }
  }
}
