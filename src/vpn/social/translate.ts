// SocialVPN address translation: rewrites the source and destination of one IPv4 packet in
// place, between a friend device's view of its subnet and ours, and fixes every checksum
// those addresses feed, incrementally (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')):
//   - the IPv4 header checksum;
//   - the TCP, UDP, UDP-Lite and DCCP checksums (their pseudo-header holds the addresses).
//     A UDP checksum of 0 means "none" and stays 0; a result of 0 is sent as 0xffff;
//   - ICMP errors (destination unreachable, source quench, redirect, time exceeded, parameter
//     problem) quote the offending packet's IP header and at least 8 more bytes. Inside the
//     quote an address equal to oldDst becomes newDst and one equal to oldSrc becomes newSrc
//     (the quote travels the other way), the quoted header checksum and the quoted TCP/UDP
//     checksum (when its field is in the quote) are fixed, and the ICMP checksum covers it all.
//     ICMP itself has no pseudo-header: echo and other queries need no L4 change.
// Fragments: a non-first fragment (offset > 0) has no L4 header, only the IP header changes.
// A first fragment's L4 checksum covers the whole datagram; the incremental update is exact
// all the same. Eqn. 3 of a positive sum always lands on the value a from-scratch
// computation gives, so translated checksums are canonical.
// With `partialL4` the TCP/UDP checksum field holds the uncomplemented pseudo-header sum a
// kernel leaves for checksum offload (virtio_net_hdr NEEDS_CSUM): it is adjusted without
// complementing, and a UDP 0 is not special there.
// IP options are left as they are (source routes and record-route are not rewritten).
// IPv6 is out of scope: SocialVPN translates IPv4 only.
//
// Malformed input returns a drop reason and leaves the packet untouched; nothing throws and
// nothing is allocated per packet.
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_HEADER, readU16, readU32, writeU16, writeU32 } from '../frames.js';

export const IPPROTO_DCCP = 33;
export const IPPROTO_UDPLITE = 136;

/** Why a packet was not translated; the caller counts drops by reason. */
export type TranslateDrop =
  | 'too-short' // fewer bytes than an IPv4 header
  | 'not-ipv4' // version is not 4
  | 'bad-header-length' // IHL < 5 or beyond the total length
  | 'bad-total-length' // total length beyond the buffer
  | 'address-mismatch' // the packet's addresses are not oldSrc/oldDst
  | 'truncated-l4' // the TCP/UDP/UDP-Lite/DCCP checksum field is not in the packet (or first fragment)
  | 'bad-icmp-quote'; // an ICMP error whose quoted IPv4 header is missing or malformed
export type TranslateResult = 'ok' | TranslateDrop;
export const TRANSLATE_DROPS: readonly TranslateDrop[] = [
  'too-short', 'not-ipv4', 'bad-header-length', 'bad-total-length', 'address-mismatch', 'truncated-l4', 'bad-icmp-quote',
];

const ICMP_HEADER = 8;

/** Offset of the pseudo-header checksum in the L4 header of `proto`, or -1 if it has none. */
function l4ChecksumOffset(proto: number): number {
  switch (proto) {
    case IPPROTO_TCP: return 16;
    case IPPROTO_UDP: case IPPROTO_UDPLITE: case IPPROTO_DCCP: return 6;
    default: return -1;
  }
}

/** ICMP types whose body quotes the offending datagram. */
function isIcmpError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/** Folds a positive sum of 16-bit words into 1..0xffff (0 only for 0). */
function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** ~m + m' for the two 16-bit words of a 32-bit value changing from `from` to `to`. */
function addrDelta(from: number, to: number): number {
  return (0xffff - (from >>> 16)) + (0xffff - (from & 0xffff)) + (to >>> 16) + (to & 0xffff);
}

/** ~m + m' for one 16-bit word. */
function wordDelta(from: number, to: number): number { return (0xffff - from) + to; }

/** RFC 1624 eqn. 3: the checksum after words changed by `delta` (a sum of ~m + m'). */
function adjust(check: number, delta: number): number {
  return ~fold((~check & 0xffff) + delta) & 0xffff;
}

/** 'ok' if `pkt` starts with a well-formed IPv4 header whose total length fits the buffer. */
export function ipv4Problem(pkt: Uint8Array): TranslateResult {
  if (pkt.length < IPV4_HEADER) return 'too-short';
  if (pkt[0]! >>> 4 !== 4) return 'not-ipv4';
  const ihl = (pkt[0]! & 0x0f) * 4;
  const total = readU16(pkt, 2);
  if (total > pkt.length) return 'bad-total-length';
  if (ihl < IPV4_HEADER || ihl > total) return 'bad-header-length';
  return 'ok';
}

/** True if translateIpv4 can read `pkt`'s header (its source and destination may be read). */
export function isTranslatable(pkt: Uint8Array): boolean { return ipv4Problem(pkt) === 'ok'; }

/**
 * Rewrites `pkt` (a view starting at the IPv4 header; bytes past its total length are ignored)
 * from oldSrc → oldDst to newSrc → newDst and fixes the checksums. Addresses are u32 numbers.
 * Returns 'ok', or why the packet must be dropped (then it is unchanged).
 */
export function translateIpv4(pkt: Uint8Array, oldSrc: number, newSrc: number, oldDst: number, newDst: number, partialL4 = false): TranslateResult {
  const problem = ipv4Problem(pkt);
  if (problem !== 'ok') return problem;
  oldSrc >>>= 0; newSrc >>>= 0; oldDst >>>= 0; newDst >>>= 0;
  if (readU32(pkt, 12) !== oldSrc || readU32(pkt, 16) !== oldDst) return 'address-mismatch';
  const ihl = (pkt[0]! & 0x0f) * 4;
  const end = readU16(pkt, 2);
  const delta = addrDelta(oldSrc, newSrc) + addrDelta(oldDst, newDst);
  if ((readU16(pkt, 6) & 0x1fff) === 0) {
    // Check everything before the first write, so a drop leaves the packet as it was.
    const proto = pkt[9]!;
    const off = l4ChecksumOffset(proto);
    if (off >= 0) {
      const at = ihl + off;
      if (at + 2 > end) return 'truncated-l4';
      const old = readU16(pkt, at);
      if (partialL4) writeU16(pkt, at, fold(old + delta));
      else if (proto !== IPPROTO_UDP || old !== 0) writeU16(pkt, at, udpZero(proto, adjust(old, delta)));
    } else if (proto === IPPROTO_ICMP && end - ihl >= ICMP_HEADER && isIcmpError(pkt[ihl]!)) {
      const r = translateIcmpQuote(pkt, ihl, end, oldSrc, newSrc, oldDst, newDst);
      if (r !== 'ok') return r;
    }
  }
  writeU32(pkt, 12, newSrc);
  writeU32(pkt, 16, newDst);
  writeU16(pkt, 10, adjust(readU16(pkt, 10), delta));
  return 'ok';
}

/** A computed UDP checksum of 0 is sent as 0xffff (0 means "no checksum"). */
function udpZero(proto: number, check: number): number {
  return proto === IPPROTO_UDP && check === 0 ? 0xffff : check;
}

/** Translates the datagram an ICMP error at `icmp` quotes and fixes the ICMP checksum. */
function translateIcmpQuote(pkt: Uint8Array, icmp: number, end: number, oldSrc: number, newSrc: number, oldDst: number, newDst: number): TranslateResult {
  const q = icmp + ICMP_HEADER;
  if (q + IPV4_HEADER > end || pkt[q]! >>> 4 !== 4) return 'bad-icmp-quote';
  const qihl = (pkt[q]! & 0x0f) * 4;
  if (qihl < IPV4_HEADER || q + qihl > end) return 'bad-icmp-quote';
  // The quote is a packet the other end sent us: its source is our old destination.
  const qs = readU32(pkt, q + 12), qd = readU32(pkt, q + 16);
  const ns = qs === oldDst ? newDst : qs === oldSrc ? newSrc : qs;
  const nd = qd === oldSrc ? newSrc : qd === oldDst ? newDst : qd;
  const inner = addrDelta(qs, ns) + addrDelta(qd, nd);
  let icmpDelta = inner;
  writeU32(pkt, q + 12, ns);
  writeU32(pkt, q + 16, nd);
  const oldIpCheck = readU16(pkt, q + 10);
  const newIpCheck = adjust(oldIpCheck, inner);
  writeU16(pkt, q + 10, newIpCheck);
  icmpDelta += wordDelta(oldIpCheck, newIpCheck);
  const proto = pkt[q + 9]!;
  const off = l4ChecksumOffset(proto);
  const at = q + qihl + off;
  if (off >= 0 && (readU16(pkt, q + 6) & 0x1fff) === 0 && at + 2 <= end) {
    const old = readU16(pkt, at);
    if (proto !== IPPROTO_UDP || old !== 0) {
      const now = udpZero(proto, adjust(old, inner));
      writeU16(pkt, at, now);
      icmpDelta += wordDelta(old, now);
    }
  }
  writeU16(pkt, icmp + 2, adjust(readU16(pkt, icmp + 2), icmpDelta));
  return 'ok';
}
