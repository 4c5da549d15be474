// SocialVPN address translation (src/vpn/social/translate.ts) against an independent oracle:
// every packet is built with checksums computed from scratch by the plain one's-complement
// function below (no code shared with src/), translated, and compared byte for byte with the
// same packet built from scratch with the new addresses. python3, when present, checks a TCP
// and a UDP result a second way.
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import t from 'tap';
import { IPPROTO_DCCP, IPPROTO_UDPLITE, translateIpv4, TRANSLATE_DROPS } from '../src/vpn/social/translate.js';

const TCP = 6, UDP = 17, ICMP = 1;

/** Internet checksum from scratch: sum the 16-bit big-endian words, fold, complement. */
function checksum(bytes: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) + (i + 1 < bytes.length ? bytes[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}
const be16 = (v: number): number[] => [(v >>> 8) & 0xff, v & 0xff];
const be32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const ip = (s: string): number => s.split('.').reduce((a, p) => a * 256 + Number(p), 0);

/** An L4 segment with its pseudo-header checksum computed from scratch at `off`. */
function withPseudoChecksum(src: number, dst: number, proto: number, seg: number[], off: number, zeroIsNone = false): number[] {
  const out = seg.slice();
  out[off] = 0; out[off + 1] = 0;
  let c = checksum([...be32(src), ...be32(dst), 0, proto, ...be16(out.length), ...out]);
  if (zeroIsNone && c === 0) c = 0xffff;
  [out[off], out[off + 1]] = be16(c);
  return out;
}
function tcp(src: number, dst: number, payload: number[]): number[] {
  const h = [...be16(40000), ...be16(80), ...be32(0x01020304), ...be32(0x0a0b0c0d), 0x50, 0x18, ...be16(65535), 0, 0, 0, 0];
  return withPseudoChecksum(src, dst, TCP, [...h, ...payload], 16);
}
function udp(src: number, dst: number, payload: number[], withChecksum = true): number[] {
  const seg = [...be16(5353), ...be16(53), ...be16(8 + payload.length), 0, 0, ...payload];
  return withChecksum ? withPseudoChecksum(src, dst, UDP, seg, 6, true) : seg;
}
function icmp(type: number, code: number, rest: number[], body: number[]): number[] {
  const m = [type, code, 0, 0, ...rest, ...body];
  [m[2], m[3]] = be16(checksum(m));
  return m;
}
interface IpOpts { id?: number; fragment?: number; options?: number[] }
function ipv4(src: number, dst: number, proto: number, payload: number[], o: IpOpts = {}): number[] {
  const opts = o.options ?? [];
  const ihl = 20 + opts.length;
  const h = [0x40 | (ihl / 4), 0, ...be16(ihl + payload.length), ...be16(o.id ?? 0x1234), ...be16(o.fragment ?? 0x4000), 64, proto, 0, 0, ...be32(src), ...be32(dst), ...opts];
  [h[10], h[11]] = be16(checksum(h));
  return [...h, ...payload];
}
const bytes = (a: number[]): Uint8Array => Uint8Array.from(a);

// Kinds of packet the oracle builds from (src, dst); `payload` varies the content.
type Kind = (src: number, dst: number, payload: number[]) => number[];
const KINDS: Record<string, Kind> = {
  tcp: (s, d, p) => ipv4(s, d, TCP, tcp(s, d, p)),
  tcpWithOptions: (s, d, p) => ipv4(s, d, TCP, tcp(s, d, p), { options: [0x01, 0x01, 0x01, 0x00] }),
  udp: (s, d, p) => ipv4(s, d, UDP, udp(s, d, p)),
  udpNoChecksum: (s, d, p) => ipv4(s, d, UDP, udp(s, d, p, false)),
  udpLite: (s, d, p) => ipv4(s, d, IPPROTO_UDPLITE, withPseudoChecksum(s, d, IPPROTO_UDPLITE, [0, 1, 0, 2, 0, 8, 0, 0, ...p], 6)),
  dccp: (s, d, p) => ipv4(s, d, IPPROTO_DCCP, withPseudoChecksum(s, d, IPPROTO_DCCP, [0, 1, 0, 2, 3, 0, 0, 0, ...p, 0, 0, 0, 0].slice(0, 16), 6)),
  icmpEcho: (s, d, p) => ipv4(s, d, ICMP, icmp(8, 0, [0, 7, 0, 1], p)),
  // The peer (d) sent s a UDP datagram to a closed port; s's kernel answers d. 8 bytes of UDP quoted.
  icmpPortUnreachable: (s, d, p) => ipv4(s, d, ICMP, icmp(3, 3, [0, 0, 0, 0], ipv4(d, s, UDP, udp(d, s, p)).slice(0, 28))),
  // A TTL expired on the peer's TCP segment: the whole segment quoted (the TCP checksum with it).
  icmpTimeExceededTcp: (s, d, p) => ipv4(s, d, ICMP, icmp(11, 0, [0, 0, 0, 0], ipv4(d, s, TCP, tcp(d, s, p)))),
  // Only 8 bytes of TCP quoted (RFC 792's minimum): the TCP checksum is not in the quote.
  icmpTimeExceededTcpShort: (s, d, p) => ipv4(s, d, ICMP, icmp(11, 0, [0, 0, 0, 0], ipv4(d, s, TCP, tcp(d, s, p)).slice(0, 28))),
  // The quoted datagram has IP options (a longer quoted header) and its UDP checksum in the quote.
  icmpUnreachableQuotingOptions: (s, d, p) => ipv4(s, d, ICMP, icmp(3, 1, [0, 0, 0, 0], ipv4(d, s, UDP, udp(d, s, p), { options: [0x94, 0x04, 0, 0] }))),
  // An error about an echo request: ICMP has no pseudo-header, only the quoted IP header changes.
  icmpUnreachableQuotingEcho: (s, d, p) => ipv4(s, d, ICMP, icmp(3, 0, [0, 0, 0, 0], ipv4(d, s, ICMP, icmp(8, 0, [0, 9, 0, 2], p)))),
  // A fragment needed error (with a next-hop MTU) quoting the peer's first fragment of a UDP datagram.
  icmpFragNeededQuotingFragment: (s, d, p) => ipv4(s, d, ICMP, icmp(3, 4, [0, 0, ...be16(1400)], fragments(ipv4(d, s, UDP, udp(d, s, p)), 8)[0]!)),
};

/** An IPv4 packet cut into a first fragment of `firstLen` payload bytes (a multiple of 8) and the rest. */
function fragments(pkt: number[], firstLen: number): [number[], number[]] {
  const ihl = (pkt[0]! & 0xf) * 4;
  const head = pkt.slice(0, ihl), body = pkt.slice(ihl);
  const make = (part: number[], offset: number, more: boolean): number[] => {
    const h = head.slice();
    [h[2], h[3]] = be16(ihl + part.length);
    [h[6], h[7]] = be16((more ? 0x2000 : 0) | (offset / 8));
    h[10] = 0; h[11] = 0;
    [h[10], h[11]] = be16(checksum(h));
    return [...h, ...part];
  };
  return [make(body.slice(0, firstLen), 0, true), make(body.slice(firstLen), firstLen, false)];
}

const A = ip('192.168.7.20'), B = ip('10.99.1.2'); // the packet as sent
const A2 = ip('172.31.0.1'), B2 = ip('172.31.4.9'); // as the other device sees it
const PAYLOAD = Array.from({ length: 61 }, (_, i) => (i * 37 + 11) & 0xff); // odd length on purpose

t.test('each kind translates to exactly the packet built from scratch with the new addresses', async (t) => {
  for (const [name, kind] of Object.entries(KINDS)) {
    const pkt = bytes(kind(A, B, PAYLOAD));
    t.equal(translateIpv4(pkt, A, A2, B, B2), 'ok', name);
    t.same([...pkt], kind(A2, B2, PAYLOAD), `${name}: bytes equal the from-scratch build`);
    t.equal(checksum(pkt.subarray(0, (pkt[0]! & 0xf) * 4)), 0, `${name}: IPv4 header checksum verifies`);
  }
});

t.test('ICMP errors: the quote is rewritten the other way round and every checksum verifies', async (t) => {
  const pkt = bytes(KINDS.icmpTimeExceededTcp!(A, B, PAYLOAD));
  t.equal(translateIpv4(pkt, A, A2, B, B2), 'ok');
  const dv = new DataView(pkt.buffer);
  t.equal(dv.getUint32(12), A2); t.equal(dv.getUint32(16), B2);
  const q = 28; // outer header 20 + ICMP header 8
  t.equal(dv.getUint32(q + 12), B2, 'quoted source (the peer) is its new address');
  t.equal(dv.getUint32(q + 16), A2, 'quoted destination (us) is our new address');
  t.equal(checksum(pkt.subarray(20)), 0, 'ICMP checksum verifies');
  t.equal(checksum(pkt.subarray(q, q + 20)), 0, 'quoted IPv4 header checksum verifies');
  const seg = pkt.subarray(q + 20);
  t.equal(checksum([...be32(B2), ...be32(A2), 0, TCP, ...be16(seg.length), ...seg]), 0, 'quoted TCP checksum verifies');
});

t.test('UDP: a checksum of 0 (none) stays 0; a result of 0 is sent as 0xffff', async (t) => {
  const none = bytes(KINDS.udpNoChecksum!(A, B, PAYLOAD));
  t.equal(translateIpv4(none, A, A2, B, B2), 'ok');
  t.equal((none[26]! << 8) | none[27]!, 0);
  // Find a payload whose checksum after translation computes to 0 (stored 0xffff).
  let found = false;
  for (let x = 0; x < 0x10000 && !found; x++) {
    const p = [x >>> 8, x & 0xff];
    const seg = udp(A2, B2, p);
    if (((seg[6]! << 8) | seg[7]!) !== 0xffff) continue;
    found = true;
    const pkt = bytes(ipv4(A, B, UDP, udp(A, B, p)));
    t.equal(translateIpv4(pkt, A, A2, B, B2), 'ok');
    t.equal((pkt[26]! << 8) | pkt[27]!, 0xffff, 'computed 0 is sent as 0xffff');
    t.same([...pkt], ipv4(A2, B2, UDP, seg));
  }
  t.ok(found, 'a payload with checksum 0 exists');
});

t.test('fragments: a first fragment gets the whole-datagram checksum; a later one only a new IP header', async (t) => {
  for (const kind of ['tcp', 'udp'] as const) {
    const [first, rest] = fragments(KINDS[kind]!(A, B, PAYLOAD), 32);
    const [first2, rest2] = fragments(KINDS[kind]!(A2, B2, PAYLOAD), 32);
    const f = bytes(first), r = bytes(rest);
    t.equal(translateIpv4(f, A, A2, B, B2), 'ok');
    t.equal(translateIpv4(r, A, A2, B, B2), 'ok');
    t.same([...f], first2, `${kind}: first fragment`);
    t.same([...r], rest2, `${kind}: non-first fragment`);
  }
  // A first fragment too short to hold the TCP checksum is dropped (RFC 1858's tiny fragments).
  const [tiny] = fragments(KINDS.tcp!(A, B, PAYLOAD), 8);
  const tp = bytes(tiny);
  t.equal(translateIpv4(tp, A, A2, B, B2), 'truncated-l4');
  t.same([...tp], tiny, 'unchanged');
});

t.test('partial (offloaded) L4 checksums are adjusted as uncomplemented sums', async (t) => {
  for (const [proto, seg] of [[TCP, tcp(A, B, PAYLOAD)], [UDP, udp(A, B, PAYLOAD)]] as const) {
    const off = proto === TCP ? 16 : 6;
    const partial = (s: number, d: number, x: number[]): number[] => {
      const out = x.slice();
      [out[off], out[off + 1]] = be16(~checksum([...be32(s), ...be32(d), 0, proto, ...be16(x.length)]) & 0xffff);
      return out;
    };
    const pkt = bytes(ipv4(A, B, proto, partial(A, B, seg)));
    t.equal(translateIpv4(pkt, A, A2, B, B2, true), 'ok');
    const got = pkt.subarray(20);
    // Finishing the checksum the way the NIC would: complement of the sum over the segment.
    const finished = [...got];
    [finished[off], finished[off + 1]] = be16(checksum(got));
    t.equal(checksum([...be32(A2), ...be32(B2), 0, proto, ...be16(got.length), ...finished]), 0, `proto ${proto} finishes to a valid checksum`);
  }
});

t.test('malformed input returns a reason and leaves the packet alone', async (t) => {
  const good = KINDS.tcp!(A, B, PAYLOAD);
  const cases: [string, number[]][] = [
    ['too-short', good.slice(0, 19)],
    ['not-ipv4', [0x65, ...good.slice(1)]],
    ['bad-header-length', [0x44, ...good.slice(1)]],
    ['bad-total-length', good.slice(0, good.length - 1)],
    ['truncated-l4', ipv4(A, B, TCP, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])],
    ['truncated-l4', ipv4(A, B, UDP, [1, 2, 3, 4, 5])],
    ['bad-icmp-quote', ipv4(A, B, ICMP, icmp(3, 1, [0, 0, 0, 0], [0x45, 0, 0, 20]))],
    ['bad-icmp-quote', ipv4(A, B, ICMP, icmp(11, 0, [0, 0, 0, 0], [0x65, ...ipv4(B, A, UDP, udp(B, A, [])).slice(1)]))],
  ];
  for (const [want, pkt] of cases) {
    const b = bytes(pkt);
    t.equal(translateIpv4(b, A, A2, B, B2), want, want);
    t.same([...b], pkt, `${want}: unchanged`);
  }
  t.equal(translateIpv4(bytes(good), B, A2, A, B2), 'address-mismatch');
  // Ethernet padding past the total length is ignored and left as it is.
  const padded = bytes([...good, 0xee, 0xee]);
  t.equal(translateIpv4(padded, A, A2, B, B2), 'ok');
  t.same([...padded], [...KINDS.tcp!(A2, B2, PAYLOAD), 0xee, 0xee]);
});

t.test('property: random addresses and payloads translate to the from-scratch packet', async (t) => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  fc.assert(fc.property(
    fc.constantFrom(...Object.keys(KINDS)), u32, u32, u32, u32, fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }),
    (kind, s, d, s2, d2, payload) => {
      const k = KINDS[kind]!;
      const pkt = bytes(k(s, d, payload));
      if (translateIpv4(pkt, s, s2, d, d2) !== 'ok') return false;
      const want = k(s2, d2, payload);
      return pkt.length === want.length && pkt.every((x, i) => x === want[i]);
    },
  ), { numRuns: 3000 });
  t.pass('3000 random packets matched');
});

t.test('property: arbitrary bytes never throw; a drop leaves them unchanged', async (t) => {
  const reasons = new Set<string>(['ok', ...TRANSLATE_DROPS]);
  fc.assert(fc.property(
    fc.uint8Array({ maxLength: 120 }), fc.boolean(), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean(),
    (raw, useOwn, x, y, partial) => {
      const b = raw.slice();
      // Half the time a plausible header (version 4, IHL 5, total length = size) to reach the L4 and ICMP code.
      if (useOwn && b.length >= 20) { b[0] = 0x45; b[2] = b.length >>> 8; b[3] = b.length & 0xff; if (x & 1) b[9] = [1, 6, 17, 33, 136][x % 5]!; if (x & 2) b[20] = 3; raw = b.slice(); }
      const src = useOwn && b.length >= 20 ? new DataView(b.buffer).getUint32(12) : x;
      const dst = useOwn && b.length >= 20 ? new DataView(b.buffer).getUint32(16) : y;
      const r = translateIpv4(b, src, y, dst, x, partial);
      if (!reasons.has(r)) return false;
      return r === 'ok' || b.every((v, i) => v === raw[i]);
    },
  ), { numRuns: 5000 });
  t.pass('5000 arbitrary inputs');
});

// A second, independent implementation: python3 verifies the IPv4 and the TCP/UDP checksums.
const PY = `
import sys
def s(b):
    if len(b) % 2: b += b'\\0'
    x = sum((b[i] << 8) | b[i+1] for i in range(0, len(b), 2))
    while x >> 16: x = (x & 0xffff) + (x >> 16)
    return x
for h in sys.argv[1:]:
    p = bytes.fromhex(h); ihl = (p[0] & 15) * 4; n = (p[2] << 8) | p[3]
    seg = p[ihl:n]
    pseudo = p[12:20] + bytes([0, p[9]]) + len(seg).to_bytes(2, 'big')
    print(s(p[:ihl]) == 0xffff, s(pseudo + seg) == 0xffff, p[12:20].hex())
`;
t.test('python3 agrees on a translated TCP and UDP packet', async (t) => {
  let hasPython = true;
  try { execFileSync('python3', ['-c', 'pass'], { timeout: 10_000 }); } catch { hasPython = false; }
  if (!hasPython) {
    if (process.env.CI) t.fail('python3 is missing (tools/test-deps.sh installs it)');
    else t.comment('python3 not found: skipping the second implementation');
    return;
  }
  const hex: string[] = [];
  for (const kind of ['tcp', 'udp']) {
    const pkt = bytes(KINDS[kind]!(A, B, PAYLOAD));
    t.equal(translateIpv4(pkt, A, A2, B, B2), 'ok');
    hex.push(Buffer.from(pkt).toString('hex'));
  }
  const out = execFileSync('python3', ['-c', PY, ...hex], { timeout: 10_000, encoding: 'utf8' }).trim().split('\n');
  const addrs = Buffer.from([...be32(A2), ...be32(B2)]).toString('hex');
  t.same(out, [`True True ${addrs}`, `True True ${addrs}`]);
});
