// Ethernet/ARP/IPv4/UDP helpers for the VPN's TAP path. IPv4 addresses are u32 numbers
// (always normalised with >>> 0) so the hot path compares and masks without allocating.
// Readers taking a frame return views into it where noted: copy before keeping them if the
// TAP reader reuses its buffer.
import { WireError } from '../wire/value.js';

export const ETH_HEADER = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const IPV4_HEADER = 20; // without options
export const UDP_HEADER = 8;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const ARP_LEN = 28;
const DEFAULT_TTL = 64;

export const BROADCAST_MAC: Readonly<Uint8Array> = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
export const ZERO_MAC: Readonly<Uint8Array> = new Uint8Array(6);
export const LIMITED_BROADCAST = 0xffffffff;

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const put16 = (b: Uint8Array, o: number, v: number): void => { b[o] = (v >>> 8) & 0xff; b[o + 1] = v & 0xff; };
const put32 = (b: Uint8Array, o: number, v: number): void => {
  b[o] = v >>> 24; b[o + 1] = (v >>> 16) & 0xff; b[o + 2] = (v >>> 8) & 0xff; b[o + 3] = v & 0xff;
};
export { u16 as readU16, u32 as readU32, put16 as writeU16, put32 as writeU32 };

// ---------------------------------------------------------------------------------------
// Ethernet

/** The EtherType, or -1 if the frame is shorter than an Ethernet header. */
export function etherType(frame: Uint8Array): number {
  return frame.length < ETH_HEADER ? -1 : u16(frame, 12);
}
/** View of the destination MAC (frame must be ≥ 14 bytes). */
export function dstMac(frame: Uint8Array): Uint8Array { return frame.subarray(0, 6); }
/** View of the source MAC (frame must be ≥ 14 bytes). */
export function srcMac(frame: Uint8Array): Uint8Array { return frame.subarray(6, 12); }

export function macEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
export function isBroadcastMac(m: Uint8Array): boolean { return m.length === 6 && macEquals(m, BROADCAST_MAC); }
/** The group bit: multicast and broadcast. */
export function isMulticastMac(m: Uint8Array): boolean { return (m[0]! & 1) === 1; }

export function macToString(m: Uint8Array): string {
  let s = '';
  for (let i = 0; i < m.length; i++) s += (i ? ':' : '') + m[i]!.toString(16).padStart(2, '0');
  return s;
}
export function parseMac(s: string): Uint8Array {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) throw new Error(`invalid MAC address ${JSON.stringify(s)}`);
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

/** The IPv4 multicast MAC: 01:00:5e + the low 23 bits of the group (RFC 1112). */
export function multicastMac(ip: number): Uint8Array {
  return Uint8Array.of(0x01, 0x00, 0x5e, (ip >>> 16) & 0x7f, (ip >>> 8) & 0xff, ip & 0xff);
}

function writeEth(b: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  if (dst.length !== 6 || src.length !== 6) throw new RangeError('MAC addresses must be 6 bytes');
  b.set(dst, 0); b.set(src, 6); put16(b, 12, type);
}

// ---------------------------------------------------------------------------------------
// IPv4 addresses

export function ipToString(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

/** Dotted quad to u32; strict (no shorthand, no leading zeros that could read as octal). */
export function parseIp(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) throw new Error(`invalid IPv4 address ${JSON.stringify(s)}: expected a.b.c.d`);
  let ip = 0;
  for (let i = 1; i <= 4; i++) {
    const p = m[i]!;
    if (p.length > 1 && p[0] === '0') throw new Error(`invalid IPv4 address ${JSON.stringify(s)}: leading zero in "${p}"`);
    const n = Number(p);
    if (n > 255) throw new Error(`invalid IPv4 address ${JSON.stringify(s)}: ${n} is not a byte`);
    ip = ip * 256 + n;
  }
  return ip >>> 0;
}

export function prefixToMask(prefix: number): number {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new RangeError(`prefix length ${prefix} out of range 0..32`);
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** True if the mask is a run of ones followed by zeros (0.0.0.0 and /32 included). */
export function isContiguousMask(mask: number): boolean {
  const inv = ~mask >>> 0;
  return (inv & (inv + 1)) === 0;
}

/** Prefix length of a contiguous mask; throws for a non-contiguous one. */
export function maskToPrefix(mask: number): number {
  if (!isContiguousMask(mask)) throw new RangeError(`netmask ${ipToString(mask >>> 0)} is not contiguous`);
  let n = 0;
  for (let m = mask >>> 0; m !== 0; m = (m << 1) >>> 0) n++;
  return n;
}

export function isMulticastIp(ip: number): boolean { return (ip >>> 28) === 0xe; }
export function isLimitedBroadcast(ip: number): boolean { return (ip >>> 0) === LIMITED_BROADCAST; }
export function inSubnet(ip: number, network: number, mask: number): boolean { return ((ip ^ network) & mask) === 0; }
export function subnetBroadcast(network: number, mask: number): number { return ((network & mask) | ~mask) >>> 0; }
/** The directed broadcast of the subnet; /31 and /32 have none. */
export function isSubnetBroadcast(ip: number, network: number, mask: number): boolean {
  return (mask >>> 0) < 0xfffffffe && (ip >>> 0) === subnetBroadcast(network, mask);
}

export type DestKind = 'unicast' | 'multicast' | 'broadcast';
/** How the VPN must deliver a packet to `ip` (broadcast is handled like multicast upstream). */
export function classifyDestination(ip: number, network: number, mask: number): DestKind {
  if (isLimitedBroadcast(ip) || isSubnetBroadcast(ip, network, mask)) return 'broadcast';
  if (isMulticastIp(ip)) return 'multicast';
  return 'unicast';
}

// ---------------------------------------------------------------------------------------
// Checksums (RFC 1071)

/** One's-complement sum of b[start, end) as 16-bit big-endian words, not yet folded. */
export function onesSum(b: Uint8Array, start = 0, end = b.length, init = 0): number {
  let s = init;
  let i = start;
  for (; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < end) s += b[i]! << 8;
  // Fold often enough that the running sum stays an exact integer.
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export function finishChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/** Internet checksum of b[start, end). Over a header with its checksum field filled it is 0. */
export function internetChecksum(b: Uint8Array, start = 0, end = b.length): number {
  return finishChecksum(onesSum(b, start, end));
}

function pseudoSum(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/** UDP checksum of a segment (header + payload) whose checksum field is zero; 0 maps to 0xffff. */
export function udpChecksum(srcIp: number, dstIp: number, segment: Uint8Array, start = 0, end = segment.length): number {
  const c = finishChecksum(onesSum(segment, start, end, pseudoSum(srcIp >>> 0, dstIp >>> 0, IPPROTO_UDP, end - start)));
  return c === 0 ? 0xffff : c;
}

// ---------------------------------------------------------------------------------------
// IPv4 frames

/** Cheap structural check: IPv4 EtherType, version 4, sane IHL and total length. */
export function isIpv4Frame(frame: Uint8Array): boolean {
  if (frame.length < ETH_HEADER + IPV4_HEADER || u16(frame, 12) !== ETHERTYPE_IPV4) return false;
  const vihl = frame[ETH_HEADER]!;
  const ihl = (vihl & 0x0f) * 4;
  const total = u16(frame, ETH_HEADER + 2);
  return vihl >>> 4 === 4 && ihl >= IPV4_HEADER && total >= ihl && ETH_HEADER + total <= frame.length;
}

/** Source address of an IPv4 frame (check isIpv4Frame first). */
export function ipv4Src(frame: Uint8Array): number { return u32(frame, ETH_HEADER + 12); }
/** Destination address of an IPv4 frame (check isIpv4Frame first). */
export function ipv4Dst(frame: Uint8Array): number { return u32(frame, ETH_HEADER + 16); }
export function ipv4Protocol(frame: Uint8Array): number { return frame[ETH_HEADER + 9]!; }
export function ipv4HeaderLength(frame: Uint8Array): number { return (frame[ETH_HEADER]! & 0x0f) * 4; }
/** True for any fragment but an unfragmented packet (MF set or a non-zero offset). */
export function isIpv4Fragment(frame: Uint8Array): boolean { return (u16(frame, ETH_HEADER + 6) & 0x3fff) !== 0; }

/** True for an unfragmented IPv4 UDP frame from port 68 to `serverPort` (67), without decoding it. */
export function isDhcpRequest(frame: Uint8Array, serverPort = 67): boolean {
  if (!isIpv4Frame(frame) || ipv4Protocol(frame) !== IPPROTO_UDP || isIpv4Fragment(frame)) return false;
  const u = ETH_HEADER + ipv4HeaderLength(frame);
  if (u + UDP_HEADER > ETH_HEADER + u16(frame, ETH_HEADER + 2)) return false;
  return u16(frame, u) === serverPort + 1 && u16(frame, u + 2) === serverPort;
}

export interface UdpFrameSpec {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  srcIp: number;
  dstIp: number;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  ttl?: number;
  id?: number;
}

/** A complete Ethernet + IPv4 (no options, DF clear) + UDP frame with both checksums set. */
export function buildUdpFrame(o: UdpFrameSpec): Uint8Array {
  const udpLen = UDP_HEADER + o.payload.length;
  const ipLen = IPV4_HEADER + udpLen;
  if (ipLen > 0xffff) throw new RangeError(`UDP payload of ${o.payload.length} bytes does not fit an IPv4 packet`);
  const b = new Uint8Array(ETH_HEADER + ipLen);
  writeEth(b, o.dstMac, o.srcMac, ETHERTYPE_IPV4);
  const ip = ETH_HEADER;
  b[ip] = 0x45;
  put16(b, ip + 2, ipLen);
  put16(b, ip + 4, (o.id ?? 0) & 0xffff);
  b[ip + 8] = o.ttl ?? DEFAULT_TTL;
  b[ip + 9] = IPPROTO_UDP;
  put32(b, ip + 12, o.srcIp >>> 0);
  put32(b, ip + 16, o.dstIp >>> 0);
  put16(b, ip + 10, internetChecksum(b, ip, ip + IPV4_HEADER));
  const u = ip + IPV4_HEADER;
  put16(b, u, o.srcPort);
  put16(b, u + 2, o.dstPort);
  put16(b, u + 4, udpLen);
  b.set(o.payload, u + UDP_HEADER);
  put16(b, u + 6, udpChecksum(o.srcIp, o.dstIp, b, u, u + udpLen));
  return b;
}

export interface UdpDatagram {
  srcIp: number;
  dstIp: number;
  srcPort: number;
  dstPort: number;
  /** View into the frame. */
  payload: Uint8Array;
}

/**
 * Decodes an IPv4 UDP frame. Verifies the IPv4 header checksum, and the UDP checksum unless
 * it is 0 (sender opted out) or `verifyUdp` is false (checksum offload leaves it partial).
 * Trailing Ethernet padding after the IP total length is ignored.
 */
export function decodeUdp(frame: Uint8Array, verifyUdp = true): UdpDatagram {
  if (frame.length < ETH_HEADER) throw new WireError(`frame of ${frame.length} bytes is shorter than an Ethernet header`);
  if (u16(frame, 12) !== ETHERTYPE_IPV4) throw new WireError(`EtherType 0x${u16(frame, 12).toString(16)} is not IPv4`);
  if (frame.length < ETH_HEADER + IPV4_HEADER) throw new WireError('truncated IPv4 header');
  const ip = ETH_HEADER;
  if (frame[ip]! >>> 4 !== 4) throw new WireError(`IP version ${frame[ip]! >>> 4}, expected 4`);
  const ihl = ipv4HeaderLength(frame);
  if (ihl < IPV4_HEADER) throw new WireError(`IPv4 header length ${ihl} < 20`);
  const total = u16(frame, ip + 2);
  if (total < ihl) throw new WireError(`IPv4 total length ${total} < header length ${ihl}`);
  if (ip + total > frame.length) throw new WireError(`IPv4 total length ${total} exceeds the ${frame.length - ip} bytes present`);
  if (internetChecksum(frame, ip, ip + ihl) !== 0) throw new WireError('bad IPv4 header checksum');
  if (frame[ip + 9] !== IPPROTO_UDP) throw new WireError(`IP protocol ${frame[ip + 9]} is not UDP`);
  if (isIpv4Fragment(frame)) throw new WireError('fragmented IPv4 packet');
  const u = ip + ihl;
  if (total - ihl < UDP_HEADER) throw new WireError('truncated UDP header');
  const udpLen = u16(frame, u + 4);
  if (udpLen < UDP_HEADER || udpLen > total - ihl) throw new WireError(`UDP length ${udpLen} inconsistent with IP payload of ${total - ihl} bytes`);
  const srcIp = ipv4Src(frame), dstIp = ipv4Dst(frame);
  if (verifyUdp && u16(frame, u + 6) !== 0) {
    if (finishChecksum(onesSum(frame, u, u + udpLen, pseudoSum(srcIp, dstIp, IPPROTO_UDP, udpLen))) !== 0) {
      throw new WireError('bad UDP checksum');
    }
  }
  return { srcIp, dstIp, srcPort: u16(frame, u), dstPort: u16(frame, u + 2), payload: frame.subarray(u + UDP_HEADER, u + udpLen) };
}

// ---------------------------------------------------------------------------------------
// ARP (Ethernet/IPv4 only)

export interface ArpPacket {
  op: number;
  /** Copies, safe to keep. */
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}

export function decodeArp(frame: Uint8Array): ArpPacket {
  if (frame.length < ETH_HEADER + ARP_LEN) throw new WireError(`ARP frame of ${frame.length} bytes is too short`);
  if (u16(frame, 12) !== ETHERTYPE_ARP) throw new WireError(`EtherType 0x${u16(frame, 12).toString(16)} is not ARP`);
  const a = ETH_HEADER;
  if (u16(frame, a) !== 1 || u16(frame, a + 2) !== ETHERTYPE_IPV4 || frame[a + 4] !== 6 || frame[a + 5] !== 4) {
    throw new WireError('ARP is not Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4)');
  }
  return {
    op: u16(frame, a + 6),
    senderMac: frame.slice(a + 8, a + 14),
    senderIp: u32(frame, a + 14),
    targetMac: frame.slice(a + 18, a + 24),
    targetIp: u32(frame, a + 24),
  };
}

export function buildArp(op: number, ethDst: Uint8Array, senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetIp: number): Uint8Array {
  const b = new Uint8Array(ETH_HEADER + ARP_LEN);
  writeEth(b, ethDst, senderMac, ETHERTYPE_ARP);
  if (targetMac.length !== 6) throw new RangeError('MAC addresses must be 6 bytes');
  const a = ETH_HEADER;
  put16(b, a, 1); put16(b, a + 2, ETHERTYPE_IPV4); b[a + 4] = 6; b[a + 5] = 4;
  put16(b, a + 6, op);
  b.set(senderMac, a + 8); put32(b, a + 14, senderIp >>> 0);
  b.set(targetMac, a + 18); put32(b, a + 24, targetIp >>> 0);
  return b;
}

/** The reply to `request`: "targetIp is at replyMac", sent straight back to the asker. */
export function buildArpReply(request: ArpPacket, replyMac: Uint8Array): Uint8Array {
  return buildArp(ARP_REPLY, request.senderMac, replyMac, request.targetIp, request.senderMac, request.senderIp);
}

/** A broadcast who-has; with targetIp = senderIp it is a gratuitous ARP announcing senderIp. */
export function buildArpRequest(senderMac: Uint8Array, senderIp: number, targetIp: number): Uint8Array {
  return buildArp(ARP_REQUEST, BROADCAST_MAC, senderMac, senderIp, ZERO_MAC, targetIp);
}
