// Independent helpers for offload tests: a plain ones'-complement word loop, big-endian
// accessors, a builder for TCP super-packets as the kernel hands them over, and a checker
// for what software TSO must produce from one.
import {
  F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, type OffloadMeta,
} from '../../src/vpn/offload.js';

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
export const FIN = 0x01, PSH = 0x08, ACK = 0x10, CWR = 0x80;

/** Ones'-complement sum of the concatenation of parts (16-bit big-endian words), folded. */
export function refSum(...parts: Uint8Array[]): number {
  const all = Buffer.concat(parts);
  let s = 0;
  for (let i = 0; i < all.length; i += 2) s += all[i]! * 256 + (i + 1 < all.length ? all[i + 1]! : 0);
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}
export const get16 = (b: Uint8Array, o: number) => b[o]! * 256 + b[o + 1]!;
export const get32 = (b: Uint8Array, o: number) => get16(b, o) * 0x10000 + get16(b, o + 2);
export const set16 = (b: Uint8Array, o: number, v: number) => { b[o] = (v >> 8) & 0xff; b[o + 1] = v & 0xff; };
export const set32 = (b: Uint8Array, o: number, v: number) => { set16(b, o, Math.floor(v / 0x10000) & 0xffff); set16(b, o + 2, v & 0xffff); };

/** A fresh pseudo-header for an L4 segment of len bytes in the IP packet at frame[14..]. */
export function pseudo(frame: Uint8Array, v6: boolean, proto: number, len: number): Uint8Array {
  if (v6) {
    const p = new Uint8Array(40);
    p.set(frame.subarray(14 + 8, 14 + 40), 0);
    set32(p, 32, len); p[39] = proto;
    return p;
  }
  const p = new Uint8Array(12);
  p.set(frame.subarray(14 + 12, 14 + 20), 0);
  p[9] = proto; set16(p, 10, len);
  return p;
}

export interface Super {
  v6: boolean;
  frame: Uint8Array;
  meta: OffloadMeta;
  payload: Uint8Array;
  tcp: number;
  hdrEnd: number;
}

export interface SuperOpts { flags?: number; seq?: number; id?: number; ipOpts?: number; tcpOpts?: number; gsoType?: number }

/** Ethernet + IPv4/IPv6 + TCP super-packet as the kernel hands it over: partial TCP checksum. */
export function buildSuper(v6: boolean, payload: Uint8Array, gsoSize: number, o: SuperOpts = {}): Super {
  const ipHdr = v6 ? 40 : 20 + (o.ipOpts ?? 0), tcpHdr = 20 + (o.tcpOpts ?? 12);
  const tcp = 14 + ipHdr, hdrEnd = tcp + tcpHdr;
  const f = new Uint8Array(hdrEnd + payload.length);
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2], 0);
  set16(f, 12, v6 ? 0x86dd : 0x0800);
  if (v6) {
    f[14] = 0x60; f[15] = 0x01; f[16] = 0x23; f[17] = 0x45; // flow label
    set16(f, 18, tcpHdr + payload.length);
    f[20] = 6; f[21] = 64;
    f.set([0xfd, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1], 22);
    f.set([0xfd, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2], 38);
  } else {
    f[14] = 0x40 | (ipHdr / 4);
    set16(f, 16, ipHdr + tcpHdr + payload.length);
    set16(f, 18, o.id ?? 0x1234);
    set16(f, 20, 0x4000); // DF
    f[22] = 64; f[23] = 6;
    f.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
    for (let i = 34; i < tcp; i++) f[i] = 1; // NOP options
    set16(f, 24, ~refSum(f.subarray(14, tcp)) & 0xffff);
  }
  set16(f, tcp, 40000); set16(f, tcp + 2, 5001);
  set32(f, tcp + 4, o.seq ?? 0xfffff000); // wraps within a 64 KB packet
  set32(f, tcp + 8, 0x01020304);
  f[tcp + 12] = (tcpHdr / 4) << 4;
  f[tcp + 13] = o.flags ?? (FIN | PSH | ACK | CWR);
  set16(f, tcp + 14, 501);
  for (let i = tcp + 20; i < hdrEnd; i++) f[i] = 0x40 + i - tcp; // recognisable option bytes
  f.set(payload, hdrEnd);
  set16(f, tcp + 16, refSum(pseudo(f, v6, 6, tcpHdr + payload.length))); // folded, not inverted
  const meta: OffloadMeta = {
    flags: F_NEEDS_CSUM, gsoType: o.gsoType ?? (v6 ? GSO_TCPV6 : GSO_TCPV4), hdrLen: hdrEnd, gsoSize, csumStart: tcp, csumOffset: 16,
  };
  return { v6, frame: f, meta, payload, tcp, hdrEnd };
}

/** Everything wrong with segs as the software-TSO output for s (empty when right). */
export function segmentProblems(s: Super, segs: Uint8Array[]): string[] {
  const bad: string[] = [];
  const mss = s.meta.gsoSize, n = Math.max(1, Math.ceil(s.payload.length / mss));
  if (segs.length !== n) return [`${segs.length} segments, expected ${n}`];
  const id0 = get16(s.frame, 18), seq0 = get32(s.frame, s.tcp + 4), flags0 = s.frame[s.tcp + 13]!;
  const payloads: Uint8Array[] = [];
  segs.forEach((g, i) => {
    const len = Math.min(mss, s.payload.length - i * mss), tcpLen = s.hdrEnd - s.tcp + len;
    const at = (what: string) => bad.push(`segment ${i}: ${what}`);
    if (g.length !== s.hdrEnd + len) at(`length ${g.length}, expected ${s.hdrEnd + len}`);
    if (s.v6) {
      if (get16(g, 18) !== tcpLen) at(`IPv6 payload length ${get16(g, 18)}`);
      if (hex(g.subarray(14, 18)) !== hex(s.frame.subarray(14, 18))) at('IPv6 flow label changed');
    } else {
      if (refSum(g.subarray(14, s.tcp)) !== 0xffff) at('IPv4 header checksum');
      if (get16(g, 16) !== s.hdrEnd - 14 + len) at(`IPv4 total length ${get16(g, 16)}`);
      if (get16(g, 18) !== ((id0 + i) & 0xffff)) at(`IPv4 id ${get16(g, 18)}`);
    }
    if (refSum(pseudo(g, s.v6, 6, tcpLen), g.subarray(s.tcp)) !== 0xffff) at('TCP checksum');
    if (get32(g, s.tcp + 4) !== (seq0 + i * mss) % 2 ** 32) at(`seq ${get32(g, s.tcp + 4)}`);
    let want = flags0;
    if (i !== n - 1) want &= ~(FIN | PSH);
    if (i !== 0) want &= ~CWR;
    if (g[s.tcp + 13] !== want) at(`flags 0x${g[s.tcp + 13]!.toString(16)}, expected 0x${want.toString(16)}`);
    // Everything else in the headers is copied: MACs, addresses, ports, ack, window, options.
    if (hex(g.subarray(0, 14)) !== hex(s.frame.subarray(0, 14))) at('Ethernet header changed');
    if (hex(g.subarray(s.tcp + 8, s.tcp + 12)) !== hex(s.frame.subarray(s.tcp + 8, s.tcp + 12))) at('ack changed');
    if (hex(g.subarray(s.tcp + 18, s.hdrEnd)) !== hex(s.frame.subarray(s.tcp + 18, s.hdrEnd))) at('TCP options changed');
    if (hex(g.subarray(s.tcp, s.tcp + 4)) !== hex(s.frame.subarray(s.tcp, s.tcp + 4))) at('ports changed');
    payloads.push(g.subarray(s.hdrEnd));
  });
  if (!Buffer.concat(payloads).equals(s.payload)) bad.push('payloads do not concatenate to the original');
  return bad;
}

