// Switch mode (IPOP's switchmode): the TAP is a port of a Linux bridge, and this node is one
// port of a distributed Ethernet switch whose other ports are the namespace's members.
//
// TAP → overlay: the source MAC is learnt as local. An ARP request for an IP learnt behind a
// member is answered here (ArpCache); known unicast goes to the member its MAC was learnt
// behind; unknown unicast, broadcast and multicast are flooded to every member, limited per
// source MAC; with no other member known, a flood waits for a re-read of a member list older
// than 1 s (one may have joined since). Overlay → TAP: only frames from a verified member,
// over the connection to it; the source MAC (and an ARP sender) is learnt behind that member,
// and the frame is written to the TAP unchanged. Nothing that came from the overlay goes back
// to it (split horizon), and a flood is never re-flooded, so every frame reaches each member
// once: no duplicates.
import type { Address } from '../../address/address.js';
import type { Dht } from '../../dht/dht.js';
import type { Registrations } from '../../dht/registration.js';
import type { OnDemandConfig } from '../../config/ipop-config.js';
import { Payload } from '../../routing/ah-wire.js';
import type { TimerHandle } from '../../util/clock.js';
import { ARP_REQUEST, ETH_HEADER, ETHERTYPE_ARP, etherType } from '../frames.js';
import { FramePath, newFramePathStats, type FrameDevice, type VpnNodeComponents } from '../frame-path.js';
import { switchMembersKey, type Member } from '../mapping.js';
import { MemberList } from '../members.js';
import { OFFLOAD_HEADER, vnetToWire, type OffloadMeta } from '../offload.js';
import { OnDemand } from '../on-demand.js';
import { ArpCache } from './arp-cache.js';
import { DEFAULT_FLOOD, FloodLimiter, type FloodOptions } from './flood-limiter.js';
import { DEFAULT_MAC_TABLE, MacTable, type MacTableOptions } from './mac-table.js';

export interface SwitchNodeOptions {
  node: VpnNodeComponents;
  dht: Pick<Dht, 'get' | 'put'>;
  registrations: Pick<Registrations, 'register' | 'unregister'>;
  device: FrameDevice;
  namespace: string;
  onDemand: OnDemandConfig;
  /** MAC and ARP entries age out after this long without a frame (a switch's 300 s). */
  macAgeMs?: number;
  macTable?: Partial<MacTableOptions>;
  flood?: Partial<FloodOptions>;
}

/** Floods go to the verified members: the list is re-read this often (with or without on-demand links), so a new member gets them within seconds. */
const SYNC_MS = 5_000;
/** Frames from a node not (yet) in our member list wait this long for a member refresh. */
const UNKNOWN_WAIT_MS = 3000;
const UNKNOWN_QUEUE = 16;
/** Out-of-turn member refreshes (for frames from unknown nodes) at most this often: a non-member cannot make us read the DHT faster. */
const REFRESH_GAP_MS = 1000;
/**
 * With no member in the list a flood reaches nobody, yet one may have joined since our last
 * read: the flood waits for a re-read of a list older than this (at most FLOOD_HOLD frames).
 */
const ALONE_REFRESH_MS = 1000;
const FLOOD_HOLD = 16;

interface Pending { at: number; frames: Array<{ frame: Uint8Array; meta: OffloadMeta | undefined }> }

export class SwitchNode {
  readonly stats = {
    ...newFramePathStats(),
    rxFrames: 0, rxBytes: 0,
    /** Frames sent to the one member their MAC was learnt behind; frames flooded (copies are in txFrames). */
    unicast: 0, flooded: 0,
    /** Drops: flood over the per-source limit; unicast to a MAC on our own side; runt frames; a multicast source MAC. */
    dropFloodLimited: 0, dropLocalDestination: 0, dropRunt: 0, dropBadSource: 0,
    /** From the overlay: the sender is not a verified member; its source MAC is pinned behind another port (MAC move held). */
    dropNotMember: 0, dropMacConflict: 0,
  };
  readonly macs: MacTable;
  readonly arp: ArpCache;
  readonly floods: FloodLimiter;
  readonly onDemand: OnDemand;
  readonly memberList: MemberList;
  private readonly path: FramePath;
  /** The verified members as of the last refresh, by key. */
  private memberKeys = new Map<string, Address>();
  private pending = new Map<string, Pending>();
  private refreshing?: Promise<void>;
  private lastRefreshSoon = -Infinity;
  private refreshLater?: TimerHandle;
  private refreshedAt = -Infinity;
  private heldFloods: Array<{ data: Uint8Array; ptype: Payload }> = [];
  private timers: TimerHandle[] = [];
  private stopped = false;

  constructor(private readonly o: SwitchNodeOptions) {
    const n = o.node;
    const ageMs = o.macAgeMs ?? DEFAULT_MAC_TABLE.ageMs;
    this.macs = new MacTable(n.clock, n.log, { ...o.macTable, ageMs });
    this.arp = new ArpCache(n.clock, { ageMs, maxEntries: o.macTable?.maxEntries ?? DEFAULT_MAC_TABLE.maxEntries });
    this.floods = new FloodLimiter(n.clock, { ...DEFAULT_FLOOD, ...o.flood });
    this.onDemand = new OnDemand(n, o.onDemand);
    this.memberList = new MemberList({ dht: o.dht, registrations: o.registrations }, switchMembersKey(o.namespace), { address: n.address, ip: 0 }, Math.floor(n.clock.now()));
    this.path = new FramePath(n, o.device, this.onDemand, this.stats);
    this.path.register(Payload.Ethernet, Payload.EthernetOffload, (f, from, meta) => this.fromOverlay(f, from, meta));
    n.table.onChange((ev, c) => {
      // A member that had left is linked again (restarted), or an unknown node sent frames: re-read the records.
      if (ev === 'add' && this.memberList.departed.has(c.address.key)) this.refreshSoon();
    });
  }

  get node(): VpnNodeComponents { return this.o.node; }
  get device(): FrameDevice { return this.o.device; }
  get members(): Member[] { return this.memberList.members; }

  async start(): Promise<void> {
    await this.memberList.join();
    this.o.device.start((frames, offloaded) => {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        if (offloaded?.[i]) { vnetToWire(f, 0); this.fromTap(f.subarray(OFFLOAD_HEADER), f, Payload.EthernetOffload); } else this.fromTap(f, f, Payload.Ethernet);
      }
    });
    this.timers.push(this.o.node.clock.setInterval(() => void this.syncMembers(), SYNC_MS));
    this.timers.push(this.o.node.clock.setInterval(() => this.expire(), 1000));
    await this.syncMembers();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = this.path.stopped = true;
    for (const t of this.timers) t.cancel();
    this.refreshLater?.cancel();
    this.onDemand.close();
    this.o.device.close();
  }

  async leave(): Promise<void> { await this.memberList.leave(); }

  /** Re-reads the verified members; forgets what was learnt behind those that left; links to all with on-demand off. */
  async syncMembers(): Promise<void> {
    const ms = await this.memberList.refresh();
    if (this.stopped) return;
    const now = new Map(ms.map((m) => [m.address.key, m.address]));
    // What was learnt behind a member that left goes with it.
    for (const [key, a] of this.memberKeys) if (!now.has(key)) { this.macs.forget(a); this.arp.forget(a); }
    this.memberKeys = now;
    this.refreshedAt = this.o.node.clock.now();
    const held = this.heldFloods;
    this.heldFloods = [];
    for (const h of held) this.floodNow(h.data, h.ptype);
    for (const [key, p] of this.pending) {
      this.pending.delete(key);
      const from = now.get(key);
      if (from) for (const x of p.frames) this.deliver(x.frame, from, x.meta);
      else this.stats.dropNotMember += p.frames.length;
    }
    if (!this.o.onDemand.enabled) for (const m of ms) this.onDemand.connectNow(m.address);
  }

  private refreshSoon(): void {
    const now = this.o.node.clock.now();
    if (this.refreshing || this.stopped || this.refreshLater) return;
    const wait = this.lastRefreshSoon + REFRESH_GAP_MS - now;
    if (wait > 0) {
      this.refreshLater = this.o.node.clock.setTimeout(() => { this.refreshLater = undefined; this.refreshSoon(); }, wait);
      return;
    }
    this.lastRefreshSoon = now;
    this.refreshing = this.syncMembers().finally(() => { this.refreshing = undefined; });
  }

  private expire(): void {
    this.path.expire();
    this.macs.expire();
    this.arp.expire();
    const now = this.o.node.clock.now();
    for (const [key, p] of this.pending) {
      if (now - p.at < UNKNOWN_WAIT_MS) continue;
      this.pending.delete(key);
      this.stats.dropNotMember += p.frames.length;
    }
  }

  // ---- TAP → overlay

  /** f: the Ethernet frame; data/ptype: what crosses the overlay (f itself, or with its offload header). */
  private fromTap(f: Uint8Array, data: Uint8Array, ptype: Payload): void {
    if (f.length < ETH_HEADER) { this.stats.dropRunt++; return; }
    if (f[6]! & 1) { this.stats.dropBadSource++; return; }
    this.macs.learn(f, 6, 'local');
    if (etherType(f) === ETHERTYPE_ARP) {
      this.arp.learn(f, 'local');
      if (f.length >= ETH_HEADER + 8 && f[ETH_HEADER + 7] === ARP_REQUEST) {
        const reply = this.arp.answer(f);
        // Answered here from the ARP cache (arp.stats.localAnswers), not flooded.
        if (reply) { this.path.writeTap(reply); return; }
      }
    }
    if (f[0]! & 1) { this.flood(f, data, ptype); return; }
    const port = this.macs.lookup(f, 0);
    if (port === undefined) { this.flood(f, data, ptype); return; }
    if (port === 'local') { this.stats.dropLocalDestination++; return; }
    this.stats.unicast++;
    this.path.send(port, data, ptype);
  }

  /** Unknown unicast, broadcast and multicast: one copy to each verified member, within the source's rate. */
  private flood(f: Uint8Array, data: Uint8Array, ptype: Payload): void {
    if (!this.floods.allow(f, 6)) { this.stats.dropFloodLimited++; return; }
    if (this.memberList.members.length > 0 || this.o.node.clock.now() - this.refreshedAt < ALONE_REFRESH_MS) { this.floodNow(data, ptype); return; }
    // Copied: the TAP's buffer is not ours to keep. Flooded once the refresh is done (syncMembers).
    if (this.heldFloods.length < FLOOD_HOLD) this.heldFloods.push({ data: new Uint8Array(data), ptype }); else this.stats.dropQueueFull++;
    this.refreshSoon();
  }

  private floodNow(data: Uint8Array, ptype: Payload): void {
    const ms = this.memberList.members;
    if (ms.length === 0) return;
    this.stats.flooded++;
    for (const m of ms) this.path.send(m.address, data, ptype);
  }

  // ---- overlay → TAP

  /** A frame from `from`, over the connection to it (FramePath.register); meta: it came with an offload header. */
  private fromOverlay(f: Uint8Array, from: Address, meta: OffloadMeta | undefined): void {
    if (this.memberKeys.has(from.key)) { this.deliver(f, from, meta); return; }
    // Not a member as of our last refresh: a member that just joined, or a node outside the
    // switch. Its frames wait for a refresh, which decides.
    let p = this.pending.get(from.key);
    if (!p) { p = { at: this.o.node.clock.now(), frames: [] }; this.pending.set(from.key, p); }
    if (p.frames.length < UNKNOWN_QUEUE) p.frames.push({ frame: f, meta }); else this.stats.dropNotMember++;
    this.refreshSoon();
  }

  private deliver(f: Uint8Array, from: Address, meta: OffloadMeta | undefined): void {
    if (f.length < ETH_HEADER) { this.stats.dropRunt++; return; }
    if (f[6]! & 1) { this.stats.dropBadSource++; return; }
    const learnt = this.macs.learn(f, 6, from);
    // Its source MAC is pinned behind another port for now (a MAC move within the hold time).
    if (learnt === 'held') { this.stats.dropMacConflict++; return; }
    if (etherType(f) === ETHERTYPE_ARP) this.arp.learn(f, from);
    this.stats.rxFrames++;
    this.stats.rxBytes += f.length;
    this.onDemand.note(from, f.length);
    // The frame is ours: it was decrypted into a fresh buffer. It goes to the TAP as it came.
    if (meta) this.path.writeOffloaded(f, meta);
    else this.path.writeTap(f);
  }
}
