// The link layer: turns raw edges into Connections. Runs the link handshake (realm check,
// self/duplicate refusal, deterministic double-link race), the Linker's bounded retries
// over a peer's TAs, keepalives (and traffic-triggered probes, liveness.ts), clean close and
// neighbour-status exchange.
import type { Address } from '../address/address.js';
import type { Edge, EdgeListener } from '../transport/edge.js';
import type { TransportAddress } from '../transport/ta.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { Events } from '../util/events.js';
import type { Logger } from '../util/log.js';
import type { RandomSource } from '../util/random.js';
import { WireError } from '../wire/value.js';
import { Connection, typeRank, type Told } from './connection.js';
import type { LinkComponents, LinkEvents } from './link-components.js';
import { DEFAULT_LIVENESS_OPTIONS, Liveness, type LivenessOptions } from './liveness.js';
import { decodeLink, encodeLink, LinkError, PTYPE_RELAY, PTYPE_ROUTED, type LinkMessage } from './link-wire.js';
import type { NodeInfo } from './node-info.js';
import type { ConnectionTable } from './table.js';
import { sameNeighbors, sameTAs, stillServes } from './status-news.js';
import { isLoopback, orderPeerTAs } from './ta-order.js';

/** probeMisses 0 turns the traffic-triggered probes off (the keepalive alone). */
export interface LinkOptions extends LivenessOptions {
  /** Ping a connection silent for this long. */
  pingAfterMs: number;
  /** Close a connection silent for this long. */
  timeoutMs: number;
  /** Close an edge that never completed a handshake after this long. */
  unlinkedEdgeMs: number;
  /** Handshake resends per TA attempt, starting at handshakeRtoMs and doubling. */
  handshakeResends: number;
  handshakeRtoMs: number;
  /** Attempts per TA when the peer answers "in progress". */
  attemptsPerTA: number;
  maxTAs: number;
}

export const DEFAULT_LINK_OPTIONS: LinkOptions = {
  pingAfterMs: 10_000, timeoutMs: 30_000, unlinkedEdgeMs: 30_000,
  handshakeResends: 3, handshakeRtoMs: 400, attemptsPerTA: 4, maxTAs: 12, ...DEFAULT_LIVENESS_OPTIONS,
};

/** timeouts: quiet links closed by the keepalive; unanswered: links dropped by the liveness probes. */
export interface LinkStats { linked: number; refused: number; failed: number; malformed: number; unlinkedDrops: number; timeouts: number; unanswered: number }

interface Lock { inboundStarts: number; yielded: boolean; promise?: Promise<Connection | null> }
interface PendingStart { edge: Edge; resolve: (m: Extract<LinkMessage, { t: 'reply' }> | null) => void }

/** Whether an edge's remote TA can be dialled: ours, or a UDP peer's one socket (a TCP peer's inbound port is ephemeral). */
export const dialable = (e: Edge): boolean => !e.inbound || e.kind === 'udp';

export class LinkManager {
  readonly stats: LinkStats = { linked: 0, refused: 0, failed: 0, malformed: 0, unlinkedDrops: 0, timeouts: 0, unanswered: 0 };
  readonly events = new Events<LinkEvents>();
  leaving = false;

  /** @internal Edges without a completed handshake, by when we got them. */
  readonly unlinked = new Map<Edge, number>();
  private locks = new Map<string, Lock>();
  private starts = new Map<number, PendingStart>();
  private nextId = 1;
  private announced = '';
  private announcedTas: readonly TransportAddress[] | undefined = undefined;
  private announceTimer?: TimerHandle;
  private timer?: TimerHandle;
  /** @internal Traffic-triggered probes of the connections we send on. */
  readonly liveness: Liveness;

  private readonly self: Address;
  private readonly realm: string;
  private readonly listeners: EdgeListener[];
  private readonly localInfo: () => NodeInfo;
  private readonly neighborsFor: (peer: Address) => NodeInfo[];
  /** @internal */ readonly table: ConnectionTable;
  /** @internal */ readonly clock: Clock;
  /** @internal */ readonly random: RandomSource;
  /** @internal */ readonly log: Logger;

  constructor(c: LinkComponents, /** @internal */ readonly opts: LinkOptions = DEFAULT_LINK_OPTIONS) {
    ({ self: this.self, realm: this.realm, table: this.table, listeners: this.listeners, localInfo: this.localInfo,
      neighborsFor: this.neighborsFor, clock: this.clock, random: this.random, log: this.log } = c);
    for (const l of this.listeners) l.onEdge = (e) => this.adopt(e);
    this.liveness = new Liveness(this.clock, opts, (c) => {
      const nonce = this.random.int(0x7fffffff);
      c.edge.send(encodeLink({ t: 'ping', nonce }));
      return nonce;
    },
      (c) => this.table.get(c.address) === c,
      (c, why) => { this.stats.unanswered++; this.drop(c, why); c.edge.close('no answer'); });
    const watch = opts.probeMisses > 0;
    this.table.onChange((ev, c) => {
      if (ev === 'add' && watch) c.onSent = this.liveness.sent;
      else if (ev === 'remove') this.liveness.forget(c);
    });
  }

  start(): void {
    const period = Math.max(250, Math.min(this.opts.pingAfterMs, this.opts.timeoutMs) / 4);
    this.timer = this.clock.setInterval(() => this.keepalive(), period * (0.9 + 0.2 * this.random.float()));
  }
  stop(): void { this.timer?.cancel(); this.announceTimer?.cancel(); }

  /** Our TAs may have changed (a new NAT view): tell peers shortly, not at the next keepalive. */
  announceSoon(): void {
    if (this.announceTimer || this.leaving) return;
    this.announceTimer = this.clock.setTimeout(() => { this.announceTimer = undefined; this.announceTAs(); }, 100);
  }

  /** @internal Edges we created or accepted, before and during the handshake (link-repair.ts too). */
  adopt(e: Edge): void {
    this.unlinked.set(e, this.clock.now());
    e.onPacket = (p, edge) => this.onPacket(p, edge);
    e.onClose = (edge, why) => this.onEdgeClosed(edge, why);
  }

  private onPacket(p: Uint8Array, edge: Edge): void {
    const conn = this.table.getByEdge(edge);
    if (conn) { conn.lastHeard = this.clock.now(); if (conn.live?.watching) this.liveness.heard(conn); }
    if (p[0] === PTYPE_ROUTED) {
      if (conn) this.events.emit('routed', p, conn); else this.stats.unlinkedDrops++;
      return;
    }
    if (p[0] === PTYPE_RELAY) {
      if (conn) this.events.emit('relay', p, conn); else this.stats.unlinkedDrops++;
      return;
    }
    let m: LinkMessage;
    try { m = decodeLink(p); } catch (e) {
      this.stats.malformed++;
      if (!(e instanceof WireError)) this.log.warn(`link decode: ${(e as Error).message}`);
      return;
    }
    try { this.onLink(m, edge, conn); } catch (e) {
      this.log.error(`link handler: ${(e as Error).stack}`);
    }
  }

  private onLink(m: LinkMessage, edge: Edge, conn: Connection | undefined): void {
    switch (m.t) {
      case 'start': return this.onStart(m, edge);
      case 'reply': { const p = this.starts.get(m.id); if (p && p.edge === edge) { this.starts.delete(m.id); p.resolve(m); } return; }
      case 'ping': edge.send(encodeLink({ t: 'pong', nonce: m.nonce })); return;
      case 'pong': if (conn?.live) this.liveness.pong(conn, m.nonce); return; // lastHeard is set; a round-trip sample for the probes
      case 'close':
        if (conn) { this.drop(conn, `peer closed: ${m.reason}`); this.events.emit('neighbors', conn, m.neighbors, 'close'); }
        edge.close('peer closed');
        return;
      case 'status':
        if (!conn) return;
        if (m.tas && !sameTAs(m.tas, conn.peerTAs)) {
          conn.peerTAs = m.tas;
          this.events.emit('peerTAs', conn);
        }
        conn.reportNeighbors(m.neighbors);
        this.events.emit('neighbors', conn, m.neighbors, 'status');
        return;
      case 'statusreq': if (conn) this.sendStatus(conn, true); return;
      case 'settype': if (conn && typeRank(m.type) > typeRank(conn.type)) this.table.setType(conn, m.type); return;
      case 'punch': if (conn) this.events.emit('punch', conn, m.dial); return;
    }
  }

  // ---- responder side ----
  private onStart(m: Extract<LinkMessage, { t: 'start' }>, edge: Edge): void {
    const refuse = (code: LinkError) => {
      this.stats.refused++;
      edge.send(encodeLink({ t: 'reply', id: m.id, code, local: this.localInfo(), remoteTA: edge.remoteTA, neighbors: [] }));
    };
    if (m.realm !== this.realm) { this.log.info(`refused link from ${edge.remoteTA}: namespace ${JSON.stringify(m.realm)}`); return refuse(LinkError.Realm); }
    if (m.target && !m.target.equals(this.self)) return refuse(LinkError.TargetMismatch);
    const peer = m.local.address;
    if (peer.equals(this.self)) return refuse(LinkError.ConnectToSelf);
    // On a secure edge nobody may link under an address other than the one it proved.
    if (edge.peer && !edge.peer.address.equals(peer)) { this.log.warn(`refused link from ${edge.remoteTA}: claims ${peer.key} but proved ${edge.peer.address.key}`); return refuse(LinkError.TargetMismatch); }
    // The initiator reached us at this TA: behind a NAT, a working public mapping of ours.
    if (m.remoteTA && edge.kind === 'udp' && m.realm === this.realm) this.events.emit('observedTA', m.remoteTA, peer);
    if (this.leaving) return refuse(LinkError.Disconnecting);
    let type = m.type;
    const existing = this.table.get(peer);
    if (existing && existing.edge !== edge) {
      // Without an explicit target the peer cannot know it is already linked to us.
      if (!m.target) return refuse(LinkError.AlreadyConnected);
      // With a target it believes our link is gone: the fresh edge replaces the stale one.
      if (typeRank(existing.type) > typeRank(type)) type = existing.type;
      this.drop(existing, 'replaced by a new edge');
      existing.edge.close('replaced');
    }
    const lock = this.locks.get(peer.key);
    if (lock && !existing) {
      // Double-link race: the larger address's outbound link wins; we also give in on the
      // third try, in case only the peer's direction gets through a firewall.
      lock.inboundStarts++;
      if (peer.value > this.self.value || lock.inboundStarts >= 3) lock.yielded = true;
      else return refuse(LinkError.InProgress);
    }
    let conn = this.table.get(peer);
    if (!conn) {
      conn = new Connection(peer, edge, type, false, this.clock.now(), m.local);
      this.unlinked.delete(edge);
      this.table.add(conn);
      this.stats.linked++;
      this.log.debug(`linked (in) ${peer.key} ${type} via ${edge.remoteTA}`);
    }
    const local = this.localInfo(), neighbors = this.neighborsFor(peer);
    edge.send(encodeLink({ t: 'reply', id: m.id, code: LinkError.Ok, local, remoteTA: edge.remoteTA, neighbors }));
    conn.told = { tas: local.tas, neighbors, servesFor: undefined };
  }

  // ---- initiator side (the Linker) ----
  /**
   * Links to a peer: by address and TAs (a known target) or by TAs alone (a bootstrap
   * leaf). Resolves with the connection, or null once every TA has failed.
   */
  connect(target: { address?: Address; tas: readonly TransportAddress[] }, type: string, token = ''): Promise<Connection | null> {
    const a = target.address;
    if (a) {
      if (a.equals(this.self)) return Promise.resolve(null);
      const existing = this.table.get(a);
      if (existing) { this.upgrade(existing, type); return Promise.resolve(existing); }
    }
    const key = a ? a.key : 'ta:' + target.tas.map((t) => t.key).join(',');
    const held = this.locks.get(key);
    if (held?.promise) return held.promise;
    const lock: Lock = { inboundStarts: 0, yielded: false };
    this.locks.set(key, lock);
    lock.promise = this.link(target, type, token, lock).finally(() => this.locks.delete(key));
    return lock.promise;
  }

  /** Raises a leaf to a structured type on both sides without a new edge. */
  upgrade(c: Connection, type: string): void {
    if (typeRank(type) > typeRank(c.type)) {
      this.table.setType(c, type);
      c.edge.send(encodeLink({ t: 'settype', type }));
    }
  }

  private async link(target: { address?: Address; tas: readonly TransportAddress[] }, type: string, token: string, lock: Lock): Promise<Connection | null> {
    const tas = this.candidateTAs(target.tas);
    let expected = target.address;
    for (const ta of tas) {
      for (let attempt = 0; attempt < this.opts.attemptsPerTA; attempt++) {
        const done = expected && this.table.get(expected);
        if (done) return done;
        if (lock.yielded || this.leaving) return expected ? this.table.get(expected) ?? null : null;
        let edge: Edge;
        try { edge = await this.listenerFor(ta)!.createEdge(ta); } catch (e) {
          this.log.debug(`edge to ${ta} failed: ${(e as Error).message}`);
          break;
        }
        this.adopt(edge);
        // Another TA waits behind this one: give up on it sooner (2.8 s instead of 6 s).
        const local = this.localInfo();
        const reply = await this.handshake(edge, expected, type, token, ta === tas[tas.length - 1] ? this.opts.handshakeResends : Math.min(2, this.opts.handshakeResends), local);
        const outcome = reply ? this.onReply(reply, edge, expected, type, local.tas) : 'timeout';
        if (outcome instanceof Connection) return outcome;
        if (!this.table.getByEdge(edge)) { this.unlinked.delete(edge); edge.close('link failed'); }
        this.log.debug(`link to ${expected?.key ?? 'bootstrap'} over ${ta}: ${outcome}${reply ? ` (code ${reply.code})` : ''}`);
        if (outcome === 'abort') { this.stats.failed++; return null; }
        if (outcome === 'retarget' && reply) { expected = reply.local.address; continue; }
        if (outcome !== 'retry') break;
        await this.sleep((200 + 800 * this.random.float()) * 2 ** attempt);
      }
    }
    this.stats.failed++;
    return expected ? this.table.get(expected) ?? null : null;
  }

  /** @internal */
  candidateTAs(peerTAs: readonly TransportAddress[]): TransportAddress[] {
    return orderPeerTAs(this.localInfo().tas, peerTAs, this.opts.maxTAs, (t) => !!this.listenerFor(t));
  }

  /** told: the TAs our start carried. */
  private onReply(r: Extract<LinkMessage, { t: 'reply' }>, edge: Edge, expected: Address | undefined, type: string, told: readonly TransportAddress[]): Connection | 'retry' | 'retarget' | 'next' | 'abort' {
    const peer = r.local.address;
    switch (r.code) {
      case LinkError.Ok: break;
      case LinkError.InProgress: return 'retry';
      case LinkError.AlreadyConnected: {
        // Only a reply from the node we asked for (and, on a secure edge, the one it proved)
        // may hand us an existing connection: an impostor must not pass off another one as it.
        const genuine = (!expected || peer.equals(expected)) && (!edge.peer || edge.peer.address.equals(peer));
        const c = genuine ? this.table.get(peer) : undefined;
        if (c) { this.upgrade(c, type); return c; }
        return expected ? 'next' : 'retarget';
      }
      case LinkError.Realm: this.log.info(`${edge.remoteTA} is in another namespace`); return 'abort';
      case LinkError.ConnectToSelf: return 'next';
      case LinkError.Disconnecting: return expected ? 'abort' : 'next';
      default: return 'next';
    }
    if (peer.equals(this.self) || (expected && !peer.equals(expected))) return 'next';
    if (edge.peer && !edge.peer.address.equals(peer)) return 'next';
    if (r.remoteTA && edge.kind === 'udp') this.events.emit('observedTA', r.remoteTA, peer);
    const existing = this.table.get(peer);
    // A double-link race: the peer linked to us meanwhile. A relay edge gives way to our direct
    // one, as at the peer: it took our start (which names it as target) in place of the relay
    // edge it held. Closing the direct edge as a duplicate would leave neither side any.
    if (existing && existing.edge !== edge && existing.edge.kind === 'tunnel' && edge.kind !== 'tunnel') {
      if (typeRank(existing.type) > typeRank(type)) type = existing.type;
      this.drop(existing, 'replaced by a direct edge');
      existing.edge.close('replaced');
    } else if (existing) {
      if (existing.edge !== edge) { edge.send(encodeLink({ t: 'close', reason: 'duplicate', neighbors: [] })); }
      this.upgrade(existing, type);
      return existing;
    }
    const conn = new Connection(peer, edge, type, true, this.clock.now(), r.local);
    conn.told = { tas: told, neighbors: undefined, servesFor: undefined };
    conn.reportNeighbors(r.neighbors);
    this.unlinked.delete(edge);
    this.table.add(conn);
    this.stats.linked++;
    this.log.debug(`linked (out) ${peer.key} ${type} via ${edge.remoteTA}`);
    this.events.emit('neighbors', conn, r.neighbors, 'reply');
    return conn;
  }

  /** @internal */
  handshake(edge: Edge, target: Address | undefined, type: string, token: string, resends = this.opts.handshakeResends, local = this.localInfo()): Promise<Extract<LinkMessage, { t: 'reply' }> | null> {
    const id = this.nextId++ & 0x7fffffff;
    const pkt = encodeLink({ t: 'start', id, realm: this.realm, type, local, target, remoteTA: edge.remoteTA, token });
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      let sent = 0;
      const finish = (r: Extract<LinkMessage, { t: 'reply' }> | null) => { timer?.cancel(); this.starts.delete(id); resolve(r); };
      const send = () => {
        if (edge.closed || sent > resends) return finish(null);
        edge.send(pkt);
        timer = this.clock.setTimeout(send, this.opts.handshakeRtoMs * 2 ** sent++);
      };
      this.starts.set(id, { edge, resolve: finish });
      send();
    });
  }

  /** @internal */
  listenerFor(ta: TransportAddress): EdgeListener | undefined {
    return this.listeners.find((l) => l.kind === ta.kind);
  }
  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.clock.setTimeout(r, ms));
  }

  /** Asks the peer of a relay connection to open its NAT towards us, or to dial us. */
  sendPunch(c: Connection, dial: boolean): void {
    c.edge.send(encodeLink({ t: 'punch', dial }));
  }

  // ---- upkeep ----
  /**
   * Our neighbours around the peer and our TAs; unless `always` (the peer asked), only when
   * they differ from what we last told it in a way it would notice (status-news.ts).
   */
  sendStatus(c: Connection, always = false): void {
    const neighbors = this.neighborsFor(c.address), tas = this.localInfo().tas;
    if (!always && c.told && sameNeighbors(c.told.neighbors, neighbors) && serves(c.told, tas)) return;
    c.edge.send(encodeLink({ t: 'status', neighbors, tas }));
    c.told = { tas, neighbors, servesFor: undefined };
  }

  /**
   * Our TAs change after the handshake (a NAT mapping learnt, relay forwarders chosen):
   * peers hear the new list in a Status, so what they report of us to others stays usable.
   * Only peers whose copy no longer serves (status-news.ts) are sent one.
   */
  private announceTAs(): void {
    const tas = this.localInfo().tas;
    for (const c of this.table.all()) if (!c.told || !serves(c.told, tas)) this.sendStatus(c, true);
    if (tas === this.announcedTas) return; // localInfo() gives the same list while the TAs are the same
    this.announcedTas = tas;
    const sig = tas.map((t) => t.key).join(' ');
    if (sig === this.announced) return;
    const first = this.announced === '';
    this.announced = sig;
    if (!first) this.events.emit('announced');
  }
  requestStatus(c: Connection): void {
    c.edge.send(encodeLink({ t: 'statusreq' }));
  }

  /** Closes a connection, telling the peer why (and whom it could link to instead). */
  close(c: Connection, reason: string): void {
    c.edge.send(encodeLink({ t: 'close', reason, neighbors: this.neighborsFor(c.address) }));
    this.drop(c, reason);
    c.edge.close(reason);
  }

  /** Clean leave: every peer hears it at once, with our neighbours as replacements. */
  leave(): void {
    this.leaving = true;
    for (const c of [...this.table.all()]) this.close(c, 'leaving');
    for (const e of [...this.unlinked.keys()]) e.close('leaving');
    this.unlinked.clear();
  }

  /** @internal */
  drop(c: Connection, reason: string): void {
    if (this.table.remove(c)) this.log.debug(`lost ${c.address.key}: ${reason}`);
  }

  private onEdgeClosed(edge: Edge, why: string): void {
    this.unlinked.delete(edge);
    const c = this.table.getByEdge(edge);
    if (c) this.drop(c, `edge closed: ${why}`);
    for (const [id, p] of this.starts) if (p.edge === edge) { this.starts.delete(id); p.resolve(null); }
    // A reset means the peer no longer knows this edge (it restarted, or our address changed
    // under it): it is alive, so link again at once rather than leave the overlords a hole —
    // through the TA that worked, when we can dial it (not a TCP peer's outgoing port).
    if (c?.structured && why === 'reset by peer' && !this.leaving && !this.table.get(c.address)) {
      if (dialable(edge)) void this.connect({ address: c.address, tas: [edge.remoteTA, ...c.peerTAs] }, c.type);
      this.events.emit('peerReset');
    }
  }

  private keepalive(): void {
    const now = this.clock.now();
    this.announceTAs();
    for (const c of [...this.table.all()]) {
      const silent = now - c.lastHeard;
      if (silent > this.opts.timeoutMs) {
        this.stats.timeouts++;
        this.drop(c, `silent for ${Math.round(silent)} ms`);
        c.edge.close('timeout');
      } else if (silent > this.opts.pingAfterMs) {
        if (this.opts.probeMisses > 0) this.liveness.doubt(c);
        else c.edge.send(encodeLink({ t: 'ping', nonce: this.random.int(0x7fffffff) }));
      }
    }
    for (const [e, since] of [...this.unlinked]) {
      if (now - since > this.opts.unlinkedEdgeMs) { this.unlinked.delete(e); e.close('never linked'); }
    }
  }
}

/**
 * stillServes(told.tas, tas), remembered for the last `tas` list it held for: a node checks every
 * connection at each keepalive, and its TA list stays the same object while unchanged.
 */
function serves(told: Told, tas: readonly TransportAddress[]): boolean {
  if (told.servesFor === tas) return true;
  if (!stillServes(told.tas, tas)) return false;
  told.servesFor = tas;
  return true;
}
