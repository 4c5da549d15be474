// TAP offload metadata and software TSO: header codecs, checksum completion and segmentation
// of TCP super-packets. Every checksum is verified with the straightforward
// implementation below, independent of the one under test.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { ACK, buildSuper, CWR, FIN, get16, get32, hex, PSH, pseudo, refSum, segmentProblems, set16, type Super } from './helpers/tcp-super.js';
import {
  F_DATA_VALID, F_NEEDS_CSUM, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, OFFLOAD_HEADER, OffloadError, completeChecksum,
  decodeOffloadHeader, encodeOffloadHeader, isPlainVnet, segment, vnetToWire, wireToVnet, type OffloadMeta,
} from '../src/vpn/offload.js';

const META_KEYS = ['flags', 'gsoType', 'hdrLen', 'gsoSize', 'csumStart', 'csumOffset'] as const;
const sameMeta = (a: OffloadMeta, b: OffloadMeta) => Object.keys(a).length === 6 && META_KEYS.every((k) => a[k] === b[k]);

function rejects(t: Test, fn: () => unknown, what: string, msg?: RegExp): void {
  try {
    fn();
    t.fail(`${what}: expected an OffloadError, but it passed`);
  } catch (e) {
    t.ok(e instanceof OffloadError, `${what}: OffloadError (got ${(e as Error)?.name}: ${(e as Error)?.message})`);
    if (msg && e instanceof OffloadError) t.match(e.message, msg, `${what}: message`);
  }
}

// ---------------------------------------------------------------------------------------

t.test('offload header: wire layout and round trip', (t) => {
  const m: OffloadMeta = { flags: F_NEEDS_CSUM, gsoType: GSO_TCPV4 | GSO_ECN, hdrLen: 66, gsoSize: 1348, csumStart: 34, csumOffset: 16 };
  const b = new Uint8Array(OFFLOAD_HEADER + 4).fill(0xee);
  encodeOffloadHeader(m, b, 2);
  t.equal(hex(b), 'eeee' + '81' + '01' + '0042' + '0544' + '0022' + '0010' + 'eeee', 'big-endian, gsoType first');
  t.same(decodeOffloadHeader(b, 2, 64066), m);
  t.throws(() => encodeOffloadHeader(m, new Uint8Array(9)), RangeError);
  const plain: OffloadMeta = { flags: F_DATA_VALID, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  encodeOffloadHeader(plain, b, 0);
  t.same(decodeOffloadHeader(b, 0, 60), plain);

  const metas = fc.record({
    flags: fc.constant(F_NEEDS_CSUM), gsoType: fc.constantFrom(GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_TCPV4 | GSO_ECN, GSO_TCPV6 | GSO_ECN),
    hdrLen: fc.integer({ min: 0, max: 200 }), gsoSize: fc.integer({ min: 1, max: 0xffff }),
    csumStart: fc.integer({ min: 0, max: 200 }), csumOffset: fc.integer({ min: 0, max: 30 }).map((x) => x * 2),
  });
  fc.assert(fc.property(metas, (mm) => {
    const w = new Uint8Array(OFFLOAD_HEADER);
    encodeOffloadHeader(mm, w);
    return sameMeta(decodeOffloadHeader(w, 0, 0xffff), mm);
  }), { numRuns: 500 });
  t.end();
});

t.test('virtio_net_hdr <-> wire conversion', (t) => {
  // Little-endian kernel header: flags 1, gso TCPV6, hdr_len 86, gso_size 1348, csum 54+16.
  const vnet = [0x01, 0x04, 0x56, 0x00, 0x44, 0x05, 0x36, 0x00, 0x10, 0x00];
  const b = Uint8Array.from([0xaa, 0xbb, 0xcc, ...vnet, 0xdd]);
  t.notOk(isPlainVnet(b, 3));
  vnetToWire(b, 3);
  t.equal(hex(b), 'aabbcc' + '0401' + '0056' + '0544' + '0036' + '0010' + 'dd', 'swapped in place, neighbours untouched');
  t.same(decodeOffloadHeader(b, 3, 2000), { flags: 1, gsoType: GSO_TCPV6, hdrLen: 86, gsoSize: 1348, csumStart: 54, csumOffset: 16 });
  wireToVnet(b, 3);
  t.same([...b], [0xaa, 0xbb, 0xcc, ...vnet, 0xdd], 'wireToVnet undoes it');
  // Wire -> vnet of an encoded meta gives the kernel's little-endian layout.
  const w = new Uint8Array(OFFLOAD_HEADER);
  encodeOffloadHeader({ flags: 1, gsoType: GSO_TCPV4, hdrLen: 0x0102, gsoSize: 0x0304, csumStart: 0x0506, csumOffset: 0x0708 }, w);
  wireToVnet(w, 0);
  t.equal(hex(w), '0101' + '0201' + '0403' + '0605' + '0807');
  rejects(t, () => vnetToWire(new Uint8Array(12), 3), 'truncated');

  t.ok(isPlainVnet(new Uint8Array(10), 0), 'all zero');
  t.ok(isPlainVnet(Uint8Array.of(F_DATA_VALID, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0), 'DATA_VALID only');
  t.notOk(isPlainVnet(Uint8Array.of(F_NEEDS_CSUM, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0), 'NEEDS_CSUM');
  t.notOk(isPlainVnet(Uint8Array.of(0, GSO_TCPV4, 0, 0, 0, 0, 0, 0, 0, 0), 0), 'GSO');
  t.notOk(isPlainVnet(Uint8Array.of(4, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0), 'unknown flag');
  t.end();
});

t.test('decodeOffloadHeader rejects bad input', (t) => {
  const ok: OffloadMeta = { flags: F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 66, gsoSize: 1348, csumStart: 34, csumOffset: 16 };
  const enc = (o: Partial<OffloadMeta>) => { const b = new Uint8Array(OFFLOAD_HEADER); encodeOffloadHeader({ ...ok, ...o }, b); return b; };
  t.same(decodeOffloadHeader(enc({}), 0, 1000), ok, 'the baseline decodes');
  for (const g of [2, 3, 5, 6, 0x40, GSO_ECN, GSO_ECN | 3]) rejects(t, () => decodeOffloadHeader(enc({ gsoType: g }), 0, 1000), `gso type 0x${g.toString(16)}`, /GSO type/);
  for (const f of [4, 8, 0x80, F_NEEDS_CSUM | 0x10]) rejects(t, () => decodeOffloadHeader(enc({ flags: f }), 0, 1000), `flags 0x${f.toString(16)}`, /flags/);
  t.equal(decodeOffloadHeader(enc({ hdrLen: 0 }), 0, 34 + 16 + 2).csumStart, 34, 'checksum field ending exactly at the frame end');
  rejects(t, () => decodeOffloadHeader(enc({ hdrLen: 0 }), 0, 34 + 16 + 1), 'checksum beyond frame', /beyond/);
  rejects(t, () => decodeOffloadHeader(enc({ gsoType: GSO_NONE, csumStart: 60000 }), 0, 1000), 'csumStart beyond frame', /beyond/);
  rejects(t, () => decodeOffloadHeader(enc({ csumOffset: 7 }), 0, 1000), 'odd csum offset', /odd/);
  rejects(t, () => decodeOffloadHeader(enc({ gsoSize: 0 }), 0, 1000), 'TCPV4 with gsoSize 0', /size 0/);
  rejects(t, () => decodeOffloadHeader(enc({ flags: 0 }), 0, 1000), 'TCPV4 without NEEDS_CSUM', /partial checksum/);
  rejects(t, () => decodeOffloadHeader(enc({ flags: F_DATA_VALID }), 0, 1000), 'TCPV4 with only DATA_VALID', /partial checksum/);
  rejects(t, () => decodeOffloadHeader(enc({ hdrLen: 1001 }), 0, 1000), 'hdrLen beyond frame', /header length/);
  rejects(t, () => decodeOffloadHeader(enc({}).subarray(0, 9), 0, 1000), 'truncated header', /truncated/);
  t.same(decodeOffloadHeader(enc({ flags: 0, gsoType: GSO_NONE, csumStart: 60000 }), 0, 1000).csumStart, 60000,
    'without NEEDS_CSUM the checksum position is not used, so not checked');
  t.end();
});

t.test('completeChecksum: TCP and UDP partial checksums', (t) => {
  // TCP, IPv4 and IPv6, odd payload length, not GSO.
  for (const v6 of [false, true]) {
    const s = buildSuper(v6, randomBytes(101), 0, { flags: PSH | ACK, gsoType: GSO_NONE });
    const m = { ...s.meta, gsoSize: 0 };
    t.not(refSum(pseudo(s.frame, v6, 6, s.frame.length - s.tcp), s.frame.subarray(s.tcp)), 0xffff, 'partial does not verify yet');
    const segs = segment(m, s.frame);
    t.equal(segs.length, 1);
    t.equal(segs[0], s.frame, 'non-GSO frames are finished in place');
    t.equal(refSum(pseudo(s.frame, v6, 6, s.frame.length - s.tcp), s.frame.subarray(s.tcp)), 0xffff, `TCP/${v6 ? 'IPv6' : 'IPv4'} checksum verifies`);
    const again = s.frame.slice();
    completeChecksum({ ...m, flags: 0 }, again);
    t.same(again, s.frame, 'no NEEDS_CSUM: nothing to do');
  }

  // UDP over IPv4: 14 + 20 + 8 + payload, checksum field holding the pseudo-header sum.
  const udp = (payload: Uint8Array): Uint8Array => {
    const f = new Uint8Array(42 + payload.length);
    set16(f, 12, 0x0800); f[14] = 0x45; set16(f, 16, 28 + payload.length); f[22] = 64; f[23] = 17;
    f.set([192, 168, 7, 1, 192, 168, 7, 200], 26);
    set16(f, 34, 5353); set16(f, 36, 53); set16(f, 38, 8 + payload.length);
    f.set(payload, 42);
    set16(f, 40, refSum(pseudo(f, false, 17, 8 + payload.length)));
    return f;
  };
  const um: OffloadMeta = { flags: F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 34, csumOffset: 6 };
  const u = udp(randomBytes(333));
  completeChecksum(um, u);
  t.equal(refSum(pseudo(u, false, 17, u.length - 34), u.subarray(34)), 0xffff, 'UDP checksum verifies');
  t.not(get16(u, 40), 0);

  // A payload whose checksum comes out as 0 must be sent as 0xffff (0 means "none" for UDP).
  const z = new Uint8Array(10);
  const probe = udp(z);
  set16(z, 8, 0xffff - refSum(probe.subarray(34)));
  const zf = udp(z);
  t.equal(refSum(zf.subarray(34)), 0xffff, 'crafted so the complement is 0');
  completeChecksum(um, zf);
  t.equal(get16(zf, 40), 0xffff, 'stored as 0xffff');
  t.equal(refSum(pseudo(zf, false, 17, zf.length - 34), zf.subarray(34)), 0xffff, 'and verifies');

  rejects(t, () => completeChecksum({ ...um, csumStart: u.length - 7 }, u.slice()), 'field beyond the frame');

  // Any position of the frame in its buffer and any length (word-at-a-time fast path or not).
  for (const len of [0, 1, 2, 3, 63, 64, 65, 66, 67, 1000, 1001, 1002, 1003, 65000, 65001]) {
    const f = udp(randomBytes(len));
    const results = [0, 1, 2, 3, 5, 6].map((shift) => {
      const host = new Uint8Array(f.length + 8);
      host.set(f, shift);
      const view = host.subarray(shift, shift + f.length);
      completeChecksum(um, view);
      return { ok: refSum(pseudo(view, false, 17, view.length - 34), view.subarray(34)) === 0xffff, sum: get16(view, 40) };
    });
    t.ok(results.every((r) => r.ok && r.sum === results[0]!.sum), `UDP payload ${len}: verifies at every byte alignment`);
  }
  t.end();
});

t.test('segment: IPv4 and IPv6 super-packets', (t) => {
  for (const v6 of [false, true]) {
    for (const size of [10000, 64000]) {
      const name = `${v6 ? 'IPv6' : 'IPv4'} ${size}`;
      const s = buildSuper(v6, randomBytes(size), 1348, { gsoType: (v6 ? GSO_TCPV6 : GSO_TCPV4) | GSO_ECN });
      const before = s.frame.slice();
      const segs = segment(s.meta, s.frame);
      t.same(segmentProblems(s, segs), [], `${name}: all segments valid`);
      t.equal(segs.length, Math.ceil(size / 1348), `${name}: ${segs.length} segments`);
      t.equal(segs[0]!.length, s.hdrEnd + 1348, `${name}: full-size first segment`);
      t.equal(segs.at(-1)!.length, s.hdrEnd + (size % 1348 || 1348), `${name}: remainder in the last`);
      t.equal(segs[0]![s.tcp + 13], ACK | CWR, `${name}: first has CWR, no FIN/PSH`);
      t.equal(segs[1]![s.tcp + 13], ACK, `${name}: middle has ACK only`);
      t.equal(segs.at(-1)![s.tcp + 13], FIN | PSH | ACK, `${name}: last has FIN|PSH, no CWR`);
      if (!v6) t.same(segs.map((g) => get16(g, 18)), segs.map((_, i) => 0x1234 + i), `${name}: ids increase`);
      t.ok(segs.some((g) => get32(g, s.tcp + 4) < 0x1000), `${name}: seq wrapped past 2^32`);
      t.same(s.frame, before, `${name}: input untouched`);
    }
  }
  // The IPv4 id wraps too, and IPv4 options are copied into every segment.
  const w = buildSuper(false, randomBytes(5000), 1000, { id: 0xfffe, ipOpts: 8 });
  const ws = segment(w.meta, w.frame);
  t.same(segmentProblems(w, ws), []);
  t.same(ws.map((g) => get16(g, 18)), [0xfffe, 0xffff, 0, 1, 2]);
  // A payload that fits one segment comes out as one ordinary frame; hdrLen 0 ("unknown") is accepted.
  const one = buildSuper(true, randomBytes(500), 1348);
  t.same(segmentProblems(one, segment({ ...one.meta, hdrLen: 0 }, one.frame)), []);
  // hdrLen past the headers is only a hint (the kernel reports its linear length).
  t.same(segmentProblems(one, segment({ ...one.meta, hdrLen: one.hdrEnd + 100 }, one.frame)), []);
  t.end();
});

t.test('segment rejects malformed super-packets', (t) => {
  const s4 = buildSuper(false, randomBytes(3000), 1000), s6 = buildSuper(true, randomBytes(3000), 1000);
  const mod = (s: Super, fn: (f: Uint8Array) => void) => { const f = s.frame.slice(); fn(f); return f; };
  rejects(t, () => segment(s4.meta, mod(s4, (f) => set16(f, 12, 0x0806))), 'ARP EtherType', /neither IPv4 nor IPv6/);
  rejects(t, () => segment(s4.meta, mod(s4, (f) => { f[23] = 17; })), 'IPv4 UDP', /not TCP/);
  rejects(t, () => segment(s6.meta, mod(s6, (f) => { f[20] = 0; })), 'IPv6 hop-by-hop header', /not TCP/);
  rejects(t, () => segment(s4.meta, mod(s4, (f) => { f[14] = 0x44; })), 'IHL 16', /IHL/);
  rejects(t, () => segment(s4.meta, mod(s4, (f) => { f[14] = 0x65; })), 'IPv4 EtherType, version 6', /version/);
  rejects(t, () => segment(s4.meta, mod(s4, (f) => set16(f, 16, 4000))), 'IPv4 total length too long', /total length/);
  rejects(t, () => segment(s4.meta, mod(s4, (f) => set16(f, 20, 0x2000))), 'IPv4 fragment', /fragment/);
  rejects(t, () => segment(s6.meta, mod(s6, (f) => set16(f, 18, 4000))), 'IPv6 payload length too long', /payload length/);
  rejects(t, () => segment(s4.meta, mod(s4, (f) => { f[s4.tcp + 12] = 0x40; })), 'TCP doff 4', /TCP header length/);
  rejects(t, () => segment(s4.meta, s4.frame.subarray(0, 40)), 'truncated', /.+/);
  rejects(t, () => segment({ ...s4.meta, csumStart: s4.tcp + 2 }, s4.frame), 'csumStart off the TCP header', /checksum at/);
  rejects(t, () => segment({ ...s4.meta, csumOffset: 6 }, s4.frame), 'UDP checksum offset on TCP', /checksum at/);
  rejects(t, () => segment({ ...s4.meta, hdrLen: s4.hdrEnd - 1 }, s4.frame), 'hdrLen cutting into the headers', /header length/);
  rejects(t, () => segment({ ...s4.meta, gsoType: GSO_TCPV6 }, s4.frame), 'TCPV6 on IPv4', /IPv4 frame/);
  rejects(t, () => segment({ ...s6.meta, gsoType: GSO_TCPV4 }, s6.frame), 'TCPV4 on IPv6', /IPv6 frame/);
  rejects(t, () => segment({ ...s4.meta, gsoSize: 0 }, s4.frame), 'gsoSize 0', /size 0/);
  t.end();
});

t.test('property: random sizes, segment sizes and headers', (t) => {
  fc.assert(fc.property(
    fc.boolean(), fc.integer({ min: 0, max: 16000 }), fc.integer({ min: 1, max: 4000 }),
    fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 10 }),
    fc.integer({ min: 0, max: 0xff }),
    (v6, size, mss, seq, id, ipw, tcpw, flags) => {
      const s = buildSuper(v6, randomBytes(size), mss, { seq, id, ipOpts: ipw * 4, tcpOpts: tcpw * 4, flags });
      const before = s.frame.slice();
      const problems = segmentProblems(s, segment(s.meta, s.frame));
      if (problems.length > 0) throw new Error(problems.slice(0, 5).join('; '));
      return Buffer.from(before).equals(s.frame);
    }), { numRuns: 200 });
  t.pass('200 random super-packets segment correctly');
  t.end();
});
