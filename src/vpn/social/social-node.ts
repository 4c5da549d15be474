// SocialVPN's data path (IPOP's SocialVPN): this device is .1 of its own private subnet, and
// every friend device has a local IP in it (AddressBook). Only friends' devices, with the
// friendship proven both ways (friend-devices.ts), exchange packets, and only over the
// connection between the two devices (FramePath): a direct edge or a relay edge, both secured
// end to end; never routed greedily through other nodes.
//
// TAP → overlay: an ARP request for a friend device's local IP is answered here; an IPv4
//   packet to it is translated (destination → the device's own address, source → its local IP
//   for us, both from its hello) and sent to that device.
// Overlay → TAP: a packet from a mutual friend device is translated again by the receiver
//   from what it knows itself (source → our local IP for the authenticated sender, destination
//   → our own address): the packet's own addresses never decide whose it is.
// With an offloading TAP, TCP super-packets are translated whole (their partial checksum too) and
// cross as one message, as in router mode. Broadcast, multicast and IPv6 are not carried (counted).
import type { Address } from '../../address/address.js';
import type { Dht } from '../../dht/dht.js';
import type { Registrations } from '../../dht/registration.js';
import { Mode, Payload } from '../../routing/ah-wire.js';
import type { TimerHandle } from '../../util/clock.js';
import {
  ARP_REQUEST, buildArpReply, decodeArp, ETH_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4, etherType, inSubnet, ipv4Dst, ipv4Src, prefixToMask,
} from '../frames.js';
import { FramePath, newFramePathStats, type FrameDevice, type VpnNodeComponents } from '../frame-path.js';
import { F_NEEDS_CSUM, OFFLOAD_HEADER, vnetToWire, type OffloadMeta } from '../offload.js';
import { OnDemand } from '../on-demand.js';
import { Discovery } from './discovery.js';
import { FriendDevices, type CertCheck, type FriendDevice } from './friend-devices.js';
import { translateIpv4 } from './translate.js';

export interface SocialNodeOptions {
  node: VpnNodeComponents;
  dht: Pick<Dht, 'get'>;
  registrations: Pick<Registrations, 'register' | 'unregister'>;
  device: FrameDevice;
  /** Our user's public key (where our record goes). */
  userKey: Uint8Array;
  /** Our own address (.1 of the subnet) and the subnet's prefix length. */
  ip: number;
  prefix: number;
  check: CertCheck;
  /** The friends we list now: public key → alias (the same array until the list changes). */
  friends: () => ReadonlyArray<{ key: Uint8Array; alias: string }>;
  ownCert: () => Uint8Array;
  /** Our local IP for a friend device (stable across restarts) and the device behind a local IP. */
  localIpFor(node: Address, label: string): number;
  nodeAt(ip: number): string | undefined;
}

/** Friends' records are re-read this often, so a device that came online is linked within it. */
export const DISCOVERY_MS = 5000;

export class SocialNode {
  readonly stats = {
    ...newFramePathStats(),
    rxFrames: 0, rxBytes: 0, arpReplies: 0,
    /** Dropped: to or from a device that is not a mutual friend now; not IPv4 unicast; a source that is not ours; a packet translation refused (by reason). */
    dropNotFriend: 0, dropNotCarried: 0, dropNotOurSource: 0, dropUnknownIp: 0,
    dropTranslate: {} as Record<string, number>,
  };
  readonly devices: FriendDevices;
  readonly discovery: Discovery;
  readonly gatewayMac: Uint8Array;
  readonly onDemand: OnDemand;
  private readonly path: FramePath;
  private readonly mask: number;
  private timers: TimerHandle[] = [];
  private stopped = false;
  private discovering = false;

  constructor(private readonly o: SocialNodeOptions) {
    const n = o.node;
    this.mask = prefixToMask(o.prefix);
    this.gatewayMac = Uint8Array.from([0xfe, 0x53, 0x56, 0x50, 0x4e, 0x01]);
    // Friends' devices are linked right away and kept (no idle trimming).
    this.onDemand = new OnDemand(n, { enabled: false, threshold: 0, idleTimeout: 0 });
    this.path = new FramePath(n, o.device, this.onDemand, this.stats);
    this.path.register(Payload.SocialIp, Payload.SocialIpOffload, (f, from, meta) => this.fromOverlay(f, from, meta));
    // Asked per packet (mutual()): a map by key, rebuilt when the list changes, and each key's hex computed once.
    let listed: ReadonlyArray<{ key: Uint8Array; alias: string }> | undefined;
    let byHex = new Map<string, string>();
    const hexOf = new WeakMap<Uint8Array, string>();
    const hex = (k: Uint8Array) => { let h = hexOf.get(k); if (h === undefined) hexOf.set(k, h = Buffer.from(k).toString('hex')); return h; };
    const friendOf = (k: Uint8Array) => {
      const now = o.friends();
      if (now !== listed) { listed = now; byHex = new Map(now.map((f) => [hex(f.key), f.alias])); }
      return byHex.get(hex(k));
    };
    this.devices = new FriendDevices({
      clock: n.clock, check: o.check, friendOf, localIpFor: o.localIpFor, ownCert: o.ownCert, ownIp: o.ip,
      sendControl: (to, data) => {
        const c = n.table.get(to);
        if (!c) return false;
        n.router.send(to, Mode.Exact, Payload.SocialControl, data, c);
        return true;
      },
    });
    this.discovery = new Discovery({ dht: o.dht, registrations: o.registrations, check: o.check, now: () => n.clock.now() }, o.userKey);
    // Hellos, like frames, only over the connection to their sender.
    n.router.register(Payload.SocialControl, (p, h, from) => {
      if (this.stopped || !from || !from.address.equals(h.src)) { this.stats.dropNotDirect++; return; }
      this.devices.onHello(p, h.src);
    });
    n.table.onChange((ev, c) => {
      const d = ev === 'add' ? this.devices.get(c.address) : undefined;
      if (d) queueMicrotask(() => this.devices.hello(d));
    });
  }

  get node(): VpnNodeComponents { return this.o.node; }
  get device(): FrameDevice { return this.o.device; }
  get ip(): number { return this.o.ip; }

  async start(): Promise<void> {
    await this.discovery.publish(this.o.ownCert());
    this.o.device.start((frames, offloaded) => {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        if (!offloaded?.[i]) { this.fromTap(f, f, Payload.SocialIp, false); continue; }
        // A super-packet or a partial checksum: translated behind its header, sent whole.
        vnetToWire(f, 0);
        this.fromTap(f.subarray(OFFLOAD_HEADER), f, Payload.SocialIpOffload, (f[1]! & F_NEEDS_CSUM) !== 0);
      }
    });
    this.timers.push(this.o.node.clock.setInterval(() => { this.discover().catch((e: Error) => this.o.node.log.warn(`SocialVPN discovery: ${e.message}`)); }, DISCOVERY_MS));
    this.timers.push(this.o.node.clock.setInterval(() => { this.devices.tick(); this.path.expire(); }, 1000));
    await this.discover();
  }

  /** Our certificate was renewed: publish the new one. */
  async republish(): Promise<void> { await this.discovery.publish(this.o.ownCert()); }

  stop(): void {
    if (this.stopped) return;
    this.stopped = this.path.stopped = true;
    for (const t of this.timers) t.cancel();
    this.onDemand.close();
    this.discovery.withdraw();
    this.o.device.close();
  }

  /** Reads every friend's records and links to the devices found. */
  async discover(): Promise<void> {
    if (this.discovering || this.stopped) return;
    this.discovering = true;
    try {
      const friends = this.o.friends();
      const found = await Promise.all(friends.map((f) => this.discovery.devicesOf(f.key)));
      for (const list of found) {
        for (const x of list) {
          if (x.info.node.equals(this.o.node.address)) continue;
          const d = this.devices.discovered(x.cert, x.claimer);
          if (d && !this.o.node.table.get(d.node)) this.onDemand.connectNow(d.node);
        }
      }
    } finally { this.discovering = false; }
  }

  // ---- TAP → overlay

  /** f: the Ethernet frame; data/ptype: what goes on the overlay (f, or f behind its offload header); partial: the L4 checksum field holds a partial sum. */
  private fromTap(f: Uint8Array, data: Uint8Array, ptype: Payload, partial: boolean): void {
    const type = etherType(f);
    if (type === ETHERTYPE_ARP) { this.answerArp(f); return; }
    if (type !== ETHERTYPE_IPV4 || f.length < ETH_HEADER + 20) { this.stats.dropNotCarried++; return; }
    const dst = ipv4Dst(f);
    if (!this.isFriendIp(dst)) { this.stats.dropNotCarried++; return; }
    if (ipv4Src(f) !== this.o.ip) { this.stats.dropNotOurSource++; return; }
    const d = this.deviceAt(dst);
    if (!d) { this.stats.dropUnknownIp++; return; }
    if (!this.devices.mutual(d)) { this.stats.dropNotFriend++; return; }
    // The frame is ours: the TAP reader hands each frame over.
    const r = translateIpv4(f.subarray(ETH_HEADER), this.o.ip, d.viewOfUs, dst, d.ownIp, partial);
    if (r !== 'ok') { this.countTranslate(r); return; }
    this.path.send(d.node, data, ptype);
  }

  private answerArp(f: Uint8Array): void {
    let a;
    try { a = decodeArp(f); } catch { this.stats.dropNotCarried++; return; }
    if (a.op !== ARP_REQUEST || a.targetIp === this.o.ip || !this.isFriendIp(a.targetIp)) return;
    const d = this.deviceAt(a.targetIp);
    if (!d || !this.devices.mutual(d)) return;
    this.stats.arpReplies++;
    this.path.writeTap(buildArpReply(a, this.gatewayMac));
  }

  // ---- overlay → TAP

  private fromOverlay(p: Uint8Array, from: Address, meta: OffloadMeta | undefined): void {
    const d = this.devices.get(from);
    if (!d || !this.devices.mutual(d)) { this.stats.dropNotFriend++; return; }
    if (etherType(p) !== ETHERTYPE_IPV4 || p.length < ETH_HEADER + 20) { this.stats.dropNotCarried++; return; }
    // Whose the packet is comes from the connection it arrived on, never from its addresses.
    const partial = meta !== undefined && (meta.flags & F_NEEDS_CSUM) !== 0;
    const r = translateIpv4(p.subarray(ETH_HEADER), ipv4Src(p), d.localIp, ipv4Dst(p), this.o.ip, partial);
    if (r !== 'ok') { this.countTranslate(r); return; }
    p.set(this.o.device.mac, 0);
    p.set(this.gatewayMac, 6);
    this.stats.rxFrames++;
    this.stats.rxBytes += p.length;
    if (meta) this.path.writeOffloaded(p, meta);
    else this.path.writeTap(p);
  }

  private isFriendIp(ip: number): boolean {
    const net = (this.o.ip & this.mask) >>> 0, bcast = (net | ~this.mask) >>> 0;
    return inSubnet(ip, net, this.mask) && ip !== net && ip !== bcast && ip !== this.o.ip;
  }

  private deviceAt(ip: number): FriendDevice | undefined {
    const key = this.o.nodeAt(ip);
    return key === undefined ? undefined : this.devices.byKey(key);
  }

  private countTranslate(reason: string): void {
    this.stats.dropTranslate[reason] = (this.stats.dropTranslate[reason] ?? 0) + 1;
  }
}
