// The VPN on one node (Brunet's IpopNode): Ethernet frames from the TAP are answered locally
// (ARP, DHCP) or routed as overlay packets to the node owning the destination IP; frames
// from the overlay are checked (the source IP must belong to the sender) and written to
// the TAP. Every remote IP looks like one L2 neighbour with a fake gateway MAC.
// With an offloading TAP, TCP super-packets (up to 64 KB) travel as one overlay message
// (Payload.IpOffload) and are written whole on arrival, or cut in software (offload.ts)
// where the receiving device cannot take them.
import type { Address } from '../../address/address.js';
import type { OnDemandConfig } from '../../config/ipop-config.js';
import type { Dht } from '../../dht/dht.js';
import type { Registrations } from '../../dht/registration.js';
import { Payload } from '../../routing/ah-wire.js';
import type { TimerHandle } from '../../util/clock.js';
import {
  ARP_REQUEST, BROADCAST_MAC, ETH_HEADER, buildArpReply, classifyDestination, decodeArp, ETHERTYPE_ARP, ETHERTYPE_IPV4,
  ETHERTYPE_IPV6, etherType, inSubnet, ipv4Dst, ipv4Src, isDhcpRequest, isIpv4Frame, multicastMac, prefixToMask, type ArpPacket,
} from '../frames.js';
import {
  buildNeighborAdvert, decodeNeighborSolicit, IPPROTO_ICMPV6, ICMPV6_NEIGHBOR_SOLICIT, IPV6_DST, IPV6_HEADER, IPV6_SRC,
  isIpv6Frame, mappedIpv4, type NeighborSolicit,
} from '../ipv6.js';
import { lookupOwner, membersKey, type Member } from '../mapping.js';
import { MemberList } from '../members.js';
import { FramePath, newFramePathStats, type Outgoing, type VpnNodeComponents, QUEUE_PER_DESTINATION as QUEUE_PER_IP, type FrameDevice } from '../frame-path.js';
import { OFFLOAD_HEADER, vnetToWire, type OffloadMeta } from '../offload.js';
import { OnDemand } from '../on-demand.js';
import { AddressResolver, DEFAULT_RESOLVER_OPTIONS, type ResolverOptions } from '../resolver.js';

export type { FrameDevice };

/** What router mode uses of its overlay node (see VpnNodeComponents). */
export type IpopNodeComponents = VpnNodeComponents;

export interface IpopNodeOptions {
  node: IpopNodeComponents;
  dht: Dht;
  registrations: Registrations;
  device: FrameDevice;
  namespace: string;
  ip: number;
  prefix: number;
  onDemand: OnDemandConfig;
  multicast: boolean;
  /** The namespace's IPv6 /64 (8 bytes; see ipv6.ts); absent: IPv6 is not carried. */
  ipv6Prefix?: Uint8Array;
  resolver?: Partial<ResolverOptions>;
}

const QUEUE_WAIT_MS = 3000;
const SYNC_MS = { onDemand: 30_000, allMembers: 5_000 };

interface Incoming { frame: Uint8Array; from: Address; meta: OffloadMeta | undefined }
interface Waiting { at: number; out: Outgoing[]; in: Incoming[]; arp: ArpPacket[]; ns: NeighborSolicit[] }

export class IpopNode {
  readonly stats = {
    ...newFramePathStats(),
    rxFrames: 0, rxBytes: 0, arpReplies: 0, dhcpReplies: 0, ndReplies: 0,
    /** Broadcast and multicast (EnableMulticast): frames from the TAP copied to the members, frames from members written to the TAP. */
    multicastOut: 0, multicastIn: 0,
    /** Drops, by reason. From the TAP: */
    dropNotOurSource: 0, dropIpv6NotMapped: 0, dropOtherEtherType: 0,
    dropMalformedIpv4: 0, dropMalformedIpv6: 0, dropMalformedArp: 0, dropMalformedNs: 0,
    /** From the overlay: */
    dropSpoofed: 0, dropNotForUs: 0, dropOverlayNotIp: 0,
    /** Either way (and the path's own, see FramePathStats): no verified owner, broadcast/multicast switched off. */
    dropNoOwner: 0, dropMulticastOff: 0,
  };
  readonly resolver: AddressResolver;
  readonly onDemand: OnDemand;
  /** Source MAC of every frame we write: random, locally administered (Brunet's FE:…). */
  readonly gatewayMac: Uint8Array;
  readonly mask: number;
  /** The namespace's verified members (see members.ts): broadcasts, get_state, all-members links. */
  readonly memberList: MemberList;
  private waiting = new Map<number, Waiting>();
  private refreshing?: Promise<void>;
  private readonly path: FramePath;
  private timers: TimerHandle[] = [];
  private stopped = false;
  /** Answers the OS's DHCP client on the TAP (with a DHCP-leased address). */
  private dhcp?: { handle(frame: Uint8Array): Promise<Uint8Array | null> };

  constructor(private readonly o: IpopNodeOptions) {
    const n = o.node;
    this.mask = prefixToMask(o.prefix);
    this.gatewayMac = new Uint8Array(6);
    this.gatewayMac[0] = 0xfe;
    crypto.getRandomValues(this.gatewayMac.subarray(1));
    this.resolver = new AddressResolver((ip) => lookupOwner(o.dht, o.namespace, ip), n.clock, n.log, { ...DEFAULT_RESOLVER_OPTIONS, ...o.resolver });
    this.resolver.onResolved = (ip, owner) => {
      // A member that had left owns an IP we use (restarted): re-read the records now.
      if (owner && this.memberList?.departed.has(owner.key)) this.refreshSoon();
      this.onResolved(ip, owner);
    };
    this.onDemand = new OnDemand(n, o.onDemand);
    const resolve = (ip: number) => this.resolver.resolve(ip);
    this.memberList = new MemberList({ dht: o.dht, registrations: o.registrations, resolve }, membersKey(o.namespace), { address: n.address, ip: o.ip }, Math.floor(n.clock.now()));
    this.path = new FramePath(n, o.device, this.onDemand, this.stats);
    this.path.register(Payload.Ip, Payload.IpOffload, (p, from, meta) => this.fromOverlay(p, from, meta));
    n.table.onChange((ev, c) => {
      if (ev !== 'add') return;
      // A member that had left is linked again (restarted): re-read the records now rather than
      // hide it from get_state until the next refresh.
      if (this.memberList.departed.has(c.address.key)) this.refreshSoon();
    });
  }

  get ip(): number { return this.o.ip; }
  get members(): Member[] { return this.memberList.members; }
  get ipv6Prefix(): Uint8Array | undefined { return this.o.ipv6Prefix; }
  /** IpopConfig/EnableMulticast. */
  get multicast(): boolean { return this.o.multicast; }
  get node(): IpopNodeComponents { return this.o.node; }
  get device(): FrameDevice { return this.o.device; }
  setDhcp(server: { handle(frame: Uint8Array): Promise<Uint8Array | null> }): void { this.dhcp = server; }

  /** Announces membership and starts moving frames. */
  async start(): Promise<void> {
    const o = this.o;
    await this.memberList.join();
    o.device.start((frames, offloaded) => {
      for (let i = 0; i < frames.length; i++) {
        if (offloaded?.[i]) this.fromTapOffload(frames[i]!);
        else this.fromTap(frames[i]!, frames[i]!, Payload.Ip);
      }
    });
    // Broadcasts go to the members listed: with them on, a new member is listed as soon as with all links.
    const every = o.onDemand.enabled && !o.multicast ? SYNC_MS.onDemand : SYNC_MS.allMembers;
    this.timers.push(o.node.clock.setInterval(() => void this.syncMembers(), every));
    this.timers.push(o.node.clock.setInterval(() => this.expireWaiting(), 1000));
    void this.syncMembers();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.path.stopped = true;
    for (const t of this.timers) t.cancel();
    this.onDemand.close();
    this.o.device.close();
  }

  /** Leaving cleanly: the others drop us from their member lists at their next refresh. */
  async leave(): Promise<void> { await this.memberList.leave(); }

  /** A refresh out of turn, unless one is running. */
  private refreshSoon(): void {
    if (this.refreshing || this.stopped) return;
    this.refreshing = this.syncMembers().finally(() => { this.refreshing = undefined; });
  }

  /** Refreshes the verified member list, and links to every member when on-demand is off. */
  async syncMembers(): Promise<void> {
    const ms = await this.memberList.refresh();
    if (this.stopped || this.o.onDemand.enabled) return;
    for (const m of ms) this.onDemand.connectNow(m.address);
  }

  // ---- TAP → overlay

  /** A super-packet or partial-checksum frame: routed like any frame, sent with its header. */
  private fromTapOffload(whole: Uint8Array): void {
    vnetToWire(whole, 0);
    this.fromTap(whole.subarray(OFFLOAD_HEADER), whole, Payload.IpOffload);
  }

  /** f: the Ethernet frame; data/ptype: what goes on the overlay (f itself, or with its offload header). */
  private fromTap(f: Uint8Array, data: Uint8Array, ptype: Payload): void {
    const type = etherType(f);
    if (type === ETHERTYPE_IPV4) {
      if (!isIpv4Frame(f)) { this.stats.dropMalformedIpv4++; return; }
      if (this.dhcp && isDhcpRequest(f)) { this.answerDhcp(new Uint8Array(f)); return; }
      const src = ipv4Src(f);
      if (src !== this.o.ip) { this.stats.dropNotOurSource++; return; }
      const dst = ipv4Dst(f);
      const kind = classifyDestination(dst, this.o.ip, this.mask);
      if (kind !== 'unicast') { this.sendToAll(data, ptype); return; }
      if (dst === this.o.ip) return;
      this.route(dst, data, ptype);
    } else if (type === ETHERTYPE_ARP) {
      this.answerArp(f);
    } else if (type === ETHERTYPE_IPV6 && this.o.ipv6Prefix) {
      this.fromTap6(f, data, ptype, this.o.ipv6Prefix);
    } else {
      // Other EtherTypes (and IPv6 when switched off) have no owner to go to.
      this.stats.dropOtherEtherType++;
    }
  }

  /**
   * IPv6 from our own member address to another member's goes to the owner of the IPv4
   * address inside it; Neighbor Solicitations are answered here. Link-local and multicast
   * traffic (router solicitations, MLD reports) has no owner and stays on the TAP.
   */
  private fromTap6(f: Uint8Array, data: Uint8Array, ptype: Payload, prefix: Uint8Array): void {
    if (!isIpv6Frame(f)) { this.stats.dropMalformedIpv6++; return; }
    if (f[ETH_HEADER + 6] === IPPROTO_ICMPV6 && f[ETH_HEADER + IPV6_HEADER] === ICMPV6_NEIGHBOR_SOLICIT) { this.answerNs(f, prefix); return; }
    if (mappedIpv4(prefix, f, IPV6_SRC) !== this.o.ip) { this.stats.dropNotOurSource++; return; }
    const dst = mappedIpv4(prefix, f, IPV6_DST);
    if (dst === undefined || !this.isSubnetUnicast(dst)) { this.stats.dropIpv6NotMapped++; return; }
    if (dst === this.o.ip) return;
    this.route(dst, data, ptype);
  }

  private route(dst: number, data: Uint8Array, ptype: Payload): void {
    const owner = this.resolver.get(dst);
    // A TAP frame goes to one owner only: with room around it (FastPath) it is sealed in place.
    if (owner) this.path.send(owner, data, ptype, this.o.device.room);
    else if (owner === null) this.stats.dropNoOwner++;
    else this.queueOut(dst, data, ptype);
  }

  private answerNs(f: Uint8Array, prefix: Uint8Array): void {
    const ns = decodeNeighborSolicit(f);
    if (!ns) { this.stats.dropMalformedNs++; return; }
    const target = mappedIpv4(prefix, ns.target, 0);
    // Our own address (duplicate address detection must succeed) and non-members are not ours to answer.
    if (target === undefined || target === this.o.ip || !this.isSubnetUnicast(target)) return;
    const owner = this.resolver.get(target);
    if (owner) this.replyNs(ns);
    else if (owner === undefined) { const w = this.wait(target); if (w.ns.length < 4) w.ns.push(ns); }
  }

  private replyNs(ns: NeighborSolicit): void {
    this.stats.ndReplies++;
    this.path.writeTap(buildNeighborAdvert(ns, this.gatewayMac));
  }

  /** An address a member of our subnet can own (not the network, broadcast or multicast). */
  private isSubnetUnicast(ip: number): boolean {
    return inSubnet(ip, this.o.ip, this.mask) && classifyDestination(ip, this.o.ip, this.mask) === 'unicast';
  }

  /** Held until the owner is known; copied, so that a queued frame does not keep its whole TAP batch alive. */
  private queueOut(dst: number, data: Uint8Array, ptype: Payload): void {
    const w = this.wait(dst);
    if (w.out.length >= QUEUE_PER_IP) { this.stats.dropQueueFull++; return; }
    w.out.push({ data: new Uint8Array(data), ptype });
    this.stats.queued++;
  }

  /** Broadcast and multicast: unicast copies to every member, if enabled. */
  private sendToAll(data: Uint8Array, ptype: Payload): void {
    if (!this.o.multicast) { this.stats.dropMulticastOff++; return; }
    this.stats.multicastOut++;
    for (const m of this.members) this.path.send(m.address, data, ptype);
  }

  private answerArp(f: Uint8Array): void {
    let a: ArpPacket;
    try { a = decodeArp(f); } catch { this.stats.dropMalformedArp++; return; }
    // Probes (sender 0.0.0.0), our own IP and targets outside the subnet are not ours to answer.
    if (a.op !== ARP_REQUEST || a.senderIp === 0 || a.targetIp === this.o.ip || a.targetIp === a.senderIp) return;
    if (!this.isSubnetUnicast(a.targetIp)) return;
    const owner = this.resolver.get(a.targetIp);
    if (owner) this.replyArp(a);
    else if (owner === undefined) { const w = this.wait(a.targetIp); if (w.arp.length < 4) w.arp.push(a); }
  }

  private replyArp(a: ArpPacket): void {
    this.stats.arpReplies++;
    this.path.writeTap(buildArpReply(a, this.gatewayMac));
  }

  private answerDhcp(f: Uint8Array): void {
    this.dhcp!.handle(f).then((reply) => {
      if (reply && !this.stopped) { this.stats.dhcpReplies++; this.path.writeTap(reply); }
    }, (e) => this.o.node.log.warn(`DHCP: ${(e as Error).message}`));
  }

  // ---- overlay → TAP

  /** The sender's IPv4 address: the source of an IPv4 packet, or the one inside a member's IPv6 source. */
  private overlaySource(p: Uint8Array): number | undefined {
    if (isIpv4Frame(p)) return ipv4Src(p);
    const prefix = this.o.ipv6Prefix;
    if (prefix && isIpv6Frame(p)) return mappedIpv4(prefix, p, IPV6_SRC);
    return undefined;
  }

  /** A frame from `from`, over the connection to it (FramePath.register); meta: it came with an offload header. */
  private fromOverlay(p: Uint8Array, from: Address, meta: OffloadMeta | undefined): void {
    const src = this.overlaySource(p);
    if (src === undefined) { this.stats.dropOverlayNotIp++; return; }
    const owner = this.resolver.get(src);
    if (owner === undefined) {
      const w = this.wait(src);
      if (w.in.length < QUEUE_PER_IP) { w.in.push({ frame: p, from, meta }); this.stats.queued++; } else this.stats.dropQueueFull++;
      return;
    }
    this.deliver(p, from, owner, meta);
  }

  private deliver(p: Uint8Array, from: Address, owner: Address | null, meta: OffloadMeta | undefined): void {
    if (!owner || !owner.equals(from)) {
      // Either a spoofed source or our cache is stale (the IP moved): check again.
      this.stats.dropSpoofed++;
      const src = this.overlaySource(p);
      if (src !== undefined) this.resolver.invalidate(src);
      return;
    }
    // Checked by overlaySource() already: the EtherType tells the two apart.
    const v4 = etherType(p) === ETHERTYPE_IPV4;
    // IPv6 is carried for unicast between member addresses only.
    const dst = v4 ? ipv4Dst(p) : mappedIpv4(this.o.ipv6Prefix!, p, IPV6_DST);
    if (dst === undefined) { this.stats.dropNotForUs++; return; }
    const kind = v4 ? classifyDestination(dst, this.o.ip, this.mask) : 'unicast';
    if (kind === 'unicast' && dst !== this.o.ip) { this.stats.dropNotForUs++; return; }
    if (kind !== 'unicast' && !this.o.multicast) { this.stats.dropMulticastOff++; return; }
    if (kind !== 'unicast') this.stats.multicastIn++;
    // The frame is ours to rewrite: it was decrypted into a fresh buffer.
    p.set(kind === 'unicast' ? this.o.device.mac : kind === 'multicast' ? multicastMac(dst) : BROADCAST_MAC, 0);
    p.set(this.gatewayMac, 6);
    this.stats.rxFrames++;
    this.stats.rxBytes += p.length;
    this.onDemand.note(owner, p.length);
    if (meta) this.path.writeOffloaded(p, meta);
    else this.path.writeTap(p);
  }

  // ---- waiting for the resolver

  private wait(ip: number): Waiting {
    let w = this.waiting.get(ip);
    if (!w) { w = { at: this.o.node.clock.now(), out: [], in: [], arp: [], ns: [] }; this.waiting.set(ip, w); }
    return w;
  }

  private onResolved(ip: number, owner: Address | null): void {
    const w = this.waiting.get(ip);
    if (!w) return;
    this.waiting.delete(ip);
    if (this.stopped) return;
    for (const x of w.out) owner ? this.path.send(owner, x.data, x.ptype) : this.stats.dropNoOwner++;
    for (const x of w.in) this.deliver(x.frame, x.from, owner, x.meta);
    if (owner) for (const a of w.arp) this.replyArp(a);
    if (owner) for (const ns of w.ns) this.replyNs(ns);
  }

  private expireWaiting(): void {
    this.path.expire();
    const now = this.o.node.clock.now();
    for (const [ip, w] of this.waiting) {
      if (now - w.at < QUEUE_WAIT_MS) continue;
      this.waiting.delete(ip);
      this.stats.dropNoOwner += w.out.length + w.in.length;
    }
  }
}
