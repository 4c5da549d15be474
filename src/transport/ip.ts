// What the UDP and TCP listeners share: options, counters, which addresses to advertise
// (re-read as interfaces change), and address normalisation.
import { existsSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import os from 'node:os';
import type { Clock } from '../util/clock.js';
import type { RandomSource } from '../util/random.js';
import { newStats, type TransportStats } from './edge.js';
import { TransportAddress } from './ta.js';

export interface IpListenerOptions {
  /** 0 = pick a random free port. */
  port: number;
  /** Bind address; default 0.0.0.0. */
  host?: string;
  /** IPs to advertise in localTAs(); overrides the automatic choice. */
  advertise?: string[];
  /** If non-empty, advertise only the IPv4 addresses of these interfaces. */
  devices?: string[];
  /** Never advertise addresses of these interfaces (IPOP's network_ignore_list; a VPN's own TAP). */
  ignore?: string[];
  /**
   * IpopConfig/FastPath (default true): the UDP listener may use batched socket I/O where the
   * addon and kernel offer it; false keeps one datagram per call (the reference path).
   */
  fastPath?: boolean;
  clock: Clock;
  random: RandomSource;
}

/** Stats plus counters the Edge contract does not require but tests and logs want. */
export interface IpTransportStats extends TransportStats {
  socketErrors: number;
  /** Exceptions thrown by onEdge/onPacket/onClose handlers (swallowed, never rethrown). */
  handlerErrors: number;
  resetsSent: number;
}

export function newIpStats(): IpTransportStats {
  return { socketErrors: 0, handlerErrors: 0, resetsSent: 0, ...newStats() }; // new keys before the spread (docs/architecture.md, Object shapes)
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/** Addresses a listener advertises, per the advertise/devices/host rules shared by UDP and TCP. */
export function advertisedHosts(o: Pick<IpListenerOptions, 'host' | 'advertise' | 'devices' | 'ignore'>): string[] {
  if (o.advertise && o.advertise.length > 0) return [...o.advertise];
  const devices = o.devices ?? [];
  const host = o.host ?? '0.0.0.0';
  // A listener bound to one address advertises it without reading the interfaces (this runs
  // every second per listener: 1,000 nodes on 127.0.0.1 spent 16 % of their CPU here).
  if (devices.length === 0 && !WILDCARD.has(host)) return [host];
  const ifs = os.networkInterfaces();
  for (const d of o.ignore ?? []) delete ifs[d];
  if (devices.length > 0) {
    return devices.flatMap((d) => (ifs[d] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
  }
  // TUN/TAP devices are VPNs (ours in another process, say): advertising their addresses
  // would let the overlay run over the VPN it carries. Name them in DevicesToBind to use them.
  for (const d of Object.keys(ifs)) if (isTunTap(d)) delete ifs[d];
  const v4 = Object.values(ifs).flatMap((l) => l ?? []).filter((a) => a.family === 'IPv4');
  const external = v4.filter((a) => !a.internal).map((a) => a.address);
  return [...new Set([...external, '127.0.0.1'])];
}

/** Linux marks TUN and TAP devices with a tun_flags attribute in sysfs. */
export function isTunTap(device: string): boolean {
  return /^[\w.:-]+$/.test(device) && existsSync(`/sys/class/net/${device}/tun_flags`);
}

/**
 * A listener's advertised TAs, re-read from the interfaces every second: when the
 * host's address changes (DHCP renew, roaming) the new one is advertised and the stale one
 * dropped without a restart.
 */
export class AdvertisedTAs {
  private tas: TransportAddress[] = [];
  private at = -Infinity;
  constructor(private readonly kind: 'udp' | 'tcp', private readonly opts: IpListenerOptions, private readonly refreshMs = 1000) {}
  list(port: number): TransportAddress[] {
    const now = this.opts.clock.now();
    if (now - this.at >= this.refreshMs) {
      this.at = now;
      this.tas = advertisedHosts(this.opts).map((h) => new TransportAddress(this.kind, h, port));
    }
    return [...this.tas];
  }
}

/** Strips the IPv4-mapped prefix so TAs compare equal across socket families. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** Digits and dots but no IPv4 address (300.1.1.1): not a host name either, so never looked up. */
export function isBadDottedQuad(host: string): boolean {
  return /^[0-9.]+$/.test(host) && isIP(host) === 0;
}

/** Resolves a hostname TA to an IP TA, so received endpoints can be compared with it. */
export async function resolveTa(ta: TransportAddress): Promise<TransportAddress> {
  if (isIP(ta.host)) return ta;
  if (isBadDottedQuad(ta.host)) throw new Error(`${ta.host} is not a valid IPv4 address`);
  const r = await lookup(ta.host);
  return new TransportAddress(ta.kind, r.address, ta.port);
}

export function safeCall(stats: IpTransportStats, fn: () => void): void {
  try { fn(); } catch { stats.handlerErrors++; }
}
