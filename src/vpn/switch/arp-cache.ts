// Switch mode's ARP replication memory (IPOP 2014, digest §4.2): every ARP request and reply
// crossing the switch teaches "IP is at MAC, behind member M (or local)". A later ARP request
// from the TAP side for an IP learnt behind a member is answered at once with the learnt MAC,
// instead of flooding the who-has to every member again. Entries age out exactly: one whose
// last sighting is ageMs or more ago is never used.
import type { Address } from '../../address/address.js';
import type { Clock } from '../../util/clock.js';
import {
  ARP_REPLY, ARP_REQUEST, ETHERTYPE_ARP, ETH_HEADER, buildArpReply, decodeArp, etherType, ipToString, isMulticastMac,
  macEquals, macToString, ZERO_MAC, type ArpPacket,
} from '../frames.js';
import { AgingMap, portName, samePort, type MacPort } from './aging-map.js';

export interface ArpEntry { ip: number; mac: Uint8Array; port: MacPort; seen: number }
export interface ArpCacheOptions { ageMs: number; maxEntries: number }
export const DEFAULT_ARP_CACHE: ArpCacheOptions = { ageMs: 300_000, maxEntries: 4096 };

const ARP_FRAME = ETH_HEADER + 28;

/** The Ethernet/IPv4 ARP packet in a frame, or undefined for anything else (never throws). */
function arpOf(frame: Uint8Array): ArpPacket | undefined {
  if (frame.length < ARP_FRAME || etherType(frame) !== ETHERTYPE_ARP) return undefined;
  try {
    return decodeArp(frame);
  } catch {
    return undefined;
  }
}

export class ArpCache {
  /** learned: entries made or changed (MAC or port); refreshed: same binding seen again;
   *  full: bindings not learnt because the cache was full of live entries. */
  readonly stats: { learned: number; refreshed: number; localAnswers: number; readonly aged: number; full: number };
  private readonly opts: ArpCacheOptions;
  private readonly cache: AgingMap<number, ArpEntry>;

  constructor(private readonly clock: Pick<Clock, 'now'>, opts: Partial<ArpCacheOptions> = {}) {
    this.opts = { ...DEFAULT_ARP_CACHE, ...opts };
    const { ageMs, maxEntries } = this.opts;
    if (!(ageMs > 0) || !Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`bad ARP cache options: ageMs ${ageMs} (> 0), maxEntries ${maxEntries} (integer ≥ 1)`);
    }
    const cache = this.cache = new AgingMap(clock, ageMs, maxEntries);
    this.stats = { learned: 0, refreshed: 0, localAnswers: 0, get aged() { return cache.aged; }, full: 0 };
  }

  /**
   * An ARP request or reply seen on `port`: its sender IP/MAC are learnt. Non-ARP and malformed
   * frames, probes (sender IP 0.0.0.0) and group or all-zero sender MACs are ignored.
   */
  learn(frame: Uint8Array, port: MacPort): void {
    const arp = arpOf(frame);
    if (arp === undefined || (arp.op !== ARP_REQUEST && arp.op !== ARP_REPLY) || arp.senderIp === 0) return;
    if (isMulticastMac(arp.senderMac) || macEquals(arp.senderMac, ZERO_MAC)) return;
    const now = this.clock.now();
    const e = this.cache.get(arp.senderIp);
    if (e !== undefined) {
      if (macEquals(e.mac, arp.senderMac) && samePort(e.port, port)) {
        this.stats.refreshed++;
      } else {
        e.mac = arp.senderMac;
        e.port = port;
        this.stats.learned++;
      }
      e.seen = now;
      return;
    }
    if (!this.cache.add(arp.senderIp, { ip: arp.senderIp, mac: arp.senderMac, port, seen: now }, now)) {
      this.stats.full++;
      return;
    }
    this.stats.learned++;
  }

  /**
   * An ARP request from the TAP side: the reply (Ethernet + ARP, from the learnt MAC, to the
   * requester) when the target IP is learnt behind a member and fresh; else undefined. Never
   * answers for 'local' entries, probes (sender 0.0.0.0), gratuitous ARP (target == sender)
   * or a requester with a group sender MAC.
   */
  answer(frame: Uint8Array): Uint8Array | undefined {
    const req = arpOf(frame);
    if (req === undefined || req.op !== ARP_REQUEST || req.senderIp === 0 || req.targetIp === req.senderIp) return undefined;
    if (isMulticastMac(req.senderMac)) return undefined;
    const e = this.cache.get(req.targetIp);
    if (e === undefined || e.port === 'local' || this.cache.fresh(req.targetIp) === undefined) return undefined;
    this.stats.localAnswers++;
    return buildArpReply(req, e.mac);
  }

  /** Drops aged entries; returns how many. */
  expire(): number { return this.cache.expire(); }

  /** A member left: the addresses learnt behind it go. */
  forget(member: Address): void { this.cache.forget(member); }

  /** For get_state/status: the live entries, in learning order. */
  entries(): Array<{ ip: string; mac: string; port: string; ageMs: number }> {
    return this.cache.live().map(({ entry: e, ageMs }) => ({ ip: ipToString(e.ip), mac: macToString(e.mac), port: portName(e.port), ageMs }));
  }

  /** Entries held, aged ones not yet expired included; never more than maxEntries. */
  get size(): number { return this.cache.size; }
}
