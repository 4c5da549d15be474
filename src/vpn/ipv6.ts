// IPv6 in the VPN without a second address map: every member's IPv6 address is the
// namespace's /64 prefix with its IPv4 address in the last 32 bits (fdXX:…::a.b.c.d), so the
// owner of an IPv6 address is the owner of the IPv4 one the DHT already maps. Neighbour
// discovery is answered locally, as ARP is: every remote member sits behind the gateway MAC.
import { createHash } from 'node:crypto';
import { ETH_HEADER, ETHERTYPE_IPV6, finishChecksum, onesSum, readU16, readU32, writeU16, writeU32 } from './frames.js';

export const IPV6_HEADER = 40;
export const IPPROTO_ICMPV6 = 58;
export const ICMPV6_NEIGHBOR_SOLICIT = 135;
export const ICMPV6_NEIGHBOR_ADVERT = 136;
const L3 = ETH_HEADER;

/**
 * The namespace's /64: a ULA (RFC 4193, fd00::/8) whose 40-bit global ID is taken from
 * SHA-1 of the namespace, subnet 0. Deterministic, so members need not agree on anything else.
 */
export function namespacePrefix(namespace: string): Uint8Array {
  const p = new Uint8Array(8);
  p[0] = 0xfd;
  p.set(createHash('sha1').update(`ipop:${namespace}`).digest().subarray(0, 5), 1);
  return p;
}

/** The member address: prefix, four zero bytes, the IPv4 address. */
export function mappedIpv6(prefix: Uint8Array, ip: number): Uint8Array {
  const a = new Uint8Array(16);
  a.set(prefix.subarray(0, 8), 0);
  writeU32(a, 12, ip >>> 0);
  return a;
}

/** The IPv4 address inside a member address of `prefix`, or undefined for any other address. */
export function mappedIpv4(prefix: Uint8Array, b: Uint8Array, off: number): number | undefined {
  for (let i = 0; i < 8; i++) if (b[off + i] !== prefix[i]) return undefined;
  if (b[off + 8] !== 0 || b[off + 9] !== 0 || b[off + 10] !== 0 || b[off + 11] !== 0) return undefined;
  return readU32(b, off + 12);
}

export function ipv6ToString(a: Uint8Array, off = 0): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(readU16(a, off + i).toString(16));
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Cheap structural check: IPv6 EtherType, version 6, payload length within the frame. */
export function isIpv6Frame(f: Uint8Array): boolean {
  if (f.length < L3 + IPV6_HEADER || readU16(f, 12) !== ETHERTYPE_IPV6 || f[L3]! >> 4 !== 6) return false;
  return L3 + IPV6_HEADER + readU16(f, L3 + 4) <= f.length;
}

/** Offsets of the source and destination addresses in an IPv6 frame. */
export const IPV6_SRC = L3 + 8;
export const IPV6_DST = L3 + 24;

export interface NeighborSolicit {
  /** The asker's IPv6 source (:: during duplicate address detection). */
  src: Uint8Array;
  target: Uint8Array;
  /** The asker's MAC (the Ethernet source). */
  mac: Uint8Array;
}

/**
 * A Neighbor Solicitation (RFC 4861 §4.3) sent directly, with hop limit 255 and a valid
 * checksum; undefined for anything else.
 */
export function decodeNeighborSolicit(f: Uint8Array): NeighborSolicit | undefined {
  if (!isIpv6Frame(f) || f[L3 + 6] !== IPPROTO_ICMPV6 || f[L3 + 7] !== 255) return undefined;
  const icmp = L3 + IPV6_HEADER, len = readU16(f, L3 + 4);
  if (len < 24 || f[icmp] !== ICMPV6_NEIGHBOR_SOLICIT || f[icmp + 1] !== 0) return undefined;
  if (icmpv6Checksum(f, icmp, icmp + len) !== 0) return undefined;
  return { src: f.slice(IPV6_SRC, IPV6_SRC + 16), target: f.slice(icmp + 8, icmp + 24), mac: f.slice(6, 12) };
}

/**
 * The Neighbor Advertisement answering `ns` for its target: solicited and overriding, with
 * `mac` as the target's link-layer address; sent from the target to the asker (to all
 * nodes if the asker had no address yet).
 */
export function buildNeighborAdvert(ns: NeighborSolicit, mac: Uint8Array): Uint8Array {
  const icmpLen = 32;
  const f = new Uint8Array(L3 + IPV6_HEADER + icmpLen);
  f.set(ns.mac, 0);
  f.set(mac, 6);
  writeU16(f, 12, ETHERTYPE_IPV6);
  f[L3] = 0x60;
  writeU16(f, L3 + 4, icmpLen);
  f[L3 + 6] = IPPROTO_ICMPV6;
  f[L3 + 7] = 255;
  f.set(ns.target, IPV6_SRC);
  const toAll = ns.src.every((x) => x === 0);
  if (toAll) { f[IPV6_DST] = 0xff; f[IPV6_DST + 1] = 0x02; f[IPV6_DST + 15] = 1; } else f.set(ns.src, IPV6_DST);
  const icmp = L3 + IPV6_HEADER;
  f[icmp] = ICMPV6_NEIGHBOR_ADVERT;
  f[icmp + 4] = toAll ? 0x20 : 0x60; // Solicited (not when unsolicited to all), Override
  f.set(ns.target, icmp + 8);
  f[icmp + 24] = 2; // option: target link-layer address, 8 bytes
  f[icmp + 25] = 1;
  f.set(mac, icmp + 26);
  writeU16(f, icmp + 2, icmpv6Checksum(f, icmp, icmp + icmpLen));
  return f;
}

/** ICMPv6 checksum over the pseudo-header and f[start, end); 0 when the stored one is right. */
export function icmpv6Checksum(f: Uint8Array, start: number, end: number): number {
  let s = onesSum(f, IPV6_SRC, IPV6_SRC + 32);
  const len = end - start;
  s += (len >>> 16) + (len & 0xffff) + IPPROTO_ICMPV6;
  return finishChecksum(onesSum(f, start, end, s));
}

/** The 16 bytes of an IPv6 address in text form (no zone); throws on anything else. */
export function parseIpv6(text: string): Uint8Array {
  let s = text;
  const out = new Uint8Array(16);
  // A trailing dotted IPv4 part (::ffff:1.2.3.4) becomes two groups.
  const v4 = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const b = v4.slice(2).map(Number);
    if (b.some((x) => x > 255)) throw new Error(`not an IPv6 address: ${text}`);
    s = `${v4[1]}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) throw new Error(`not an IPv6 address: ${text}`);
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!), tail = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 2 ? fill < 1 : fill !== 0)) throw new Error(`not an IPv6 address: ${text}`);
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  all.forEach((g, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new Error(`not an IPv6 address: ${text}`);
    writeU16(out, i * 2, parseInt(g, 16));
  });
  return out;
}

/** The /64 for a namespace from IpopConfig's IPv6Prefix ('auto', '' = off, or an address). */
export function ipv6PrefixFor(configured: string, namespace: string): Uint8Array | undefined {
  if (configured === '') return undefined;
  return configured === 'auto' ? namespacePrefix(namespace) : parseIpv6(configured).slice(0, 8);
}
