// VPN frame helpers: addresses, checksums against known values, UDP and ARP round trips,
// and robustness of the decoders (random and mutated input only ever throws WireError).
import t, { type Test } from 'tap';
import fc from 'fast-check';
import {
  ARP_REPLY, ARP_REQUEST, BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HEADER, buildArpReply, buildArpRequest,
  buildUdpFrame, classifyDestination, decodeArp, decodeUdp, dstMac, etherType, inSubnet, internetChecksum, ipToString,
  ipv4Dst, ipv4Src, isContiguousMask, isDhcpRequest, isIpv4Frame, isMulticastIp, isSubnetBroadcast, macToString,
  maskToPrefix, multicastMac, onesSum, parseIp, parseMac, prefixToMask, srcMac, udpChecksum, type UdpFrameSpec,
} from '../src/vpn/frames.js';
import { WireError } from '../src/wire/value.js';
import { mutate } from '../bench/fuzz/mutate.js';
import { prng } from '../bench/fuzz/rng.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const MAC_A = parseMac('02:00:00:00:00:0a');
const MAC_B = parseMac('fe:01:02:03:04:05');

function rejects(t: Test, fn: () => unknown, what: string, msg?: RegExp): void {
  try {
    fn();
    t.fail(`${what}: expected a WireError, but it decoded`);
  } catch (e) {
    t.ok(e instanceof WireError, `${what}: WireError (got ${(e as Error)?.name}: ${(e as Error)?.message})`);
    if (msg && e instanceof WireError) t.match(e.message, msg, `${what}: message`);
  }
}

const spec = (payload: Uint8Array, o: Partial<UdpFrameSpec> = {}): UdpFrameSpec => ({
  srcMac: MAC_A, dstMac: MAC_B, srcIp: parseIp('192.168.0.1'), dstIp: parseIp('192.168.0.199'),
  srcPort: 1234, dstPort: 5678, payload, ...o,
});

t.test('IPv4 address text and masks', (t) => {
  t.equal(parseIp('192.168.10.1'), 0xc0a80a01);
  t.equal(parseIp('255.255.255.255'), 0xffffffff, 'u32, never negative');
  t.equal(parseIp('0.0.0.0'), 0);
  t.equal(ipToString(0xc0a80a01), '192.168.10.1');
  t.equal(ipToString(0xffffffff), '255.255.255.255');
  t.equal(ipToString(-1), '255.255.255.255', 'int32 input prints as u32');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.4 ', 'a.b.c.d', '-1.2.3.4', '1..2.3']) {
    t.throws(() => parseIp(bad), { message: /^invalid IPv4 address / }, `rejects ${JSON.stringify(bad)}`);
  }
  fc.assert(fc.property(fc.ipV4(), (s) => ipToString(parseIp(s)) === s));

  t.equal(prefixToMask(24), parseIp('255.255.255.0'));
  t.equal(prefixToMask(0), 0);
  t.equal(prefixToMask(32), 0xffffffff);
  t.equal(prefixToMask(1), 0x80000000);
  t.throws(() => prefixToMask(33));
  for (let p = 0; p <= 32; p++) t.equal(maskToPrefix(prefixToMask(p)), p, `/${p}`);
  t.notOk(isContiguousMask(parseIp('255.0.255.0')));
  t.notOk(isContiguousMask(parseIp('0.255.255.255')));
  t.throws(() => maskToPrefix(parseIp('255.255.0.255')), /not contiguous/);

  t.equal(macToString(MAC_B), 'fe:01:02:03:04:05');
  t.same(parseMac('FE-01-02-03-04-05'), MAC_B);
  t.throws(() => parseMac('fe:01:02:03:04'));
  t.equal(macToString(multicastMac(parseIp('239.255.129.1'))), '01:00:5e:7f:81:01', 'low 23 bits only');
  t.end();
});

t.test('destination classification', (t) => {
  const net = parseIp('10.250.0.0'), mask = parseIp('255.255.0.0');
  t.equal(classifyDestination(parseIp('10.250.3.4'), net, mask), 'unicast');
  t.equal(classifyDestination(parseIp('255.255.255.255'), net, mask), 'broadcast');
  t.equal(classifyDestination(parseIp('10.250.255.255'), net, mask), 'broadcast', 'subnet broadcast');
  t.equal(classifyDestination(parseIp('10.251.255.255'), net, mask), 'unicast', 'another subnet\'s broadcast');
  t.equal(classifyDestination(parseIp('224.0.0.251'), net, mask), 'multicast');
  t.equal(classifyDestination(parseIp('239.255.255.250'), net, mask), 'multicast');
  t.equal(classifyDestination(parseIp('240.0.0.1'), net, mask), 'unicast', '240/4 is not multicast');
  t.ok(isMulticastIp(parseIp('224.0.0.0')));
  t.notOk(isMulticastIp(parseIp('223.255.255.255')));
  t.notOk(isSubnetBroadcast(parseIp('10.0.0.1'), parseIp('10.0.0.0'), parseIp('255.255.255.254')), '/31 has no broadcast');
  t.ok(inSubnet(parseIp('10.250.9.9'), net, mask));
  t.notOk(inSubnet(parseIp('10.249.9.9'), net, mask));
  t.end();
});

t.test('checksums against known values', (t) => {
  // The classic RFC 1071 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
  t.equal(onesSum(fromHex('0001f203f4f5f6f7')), 0xddf2);
  t.equal(internetChecksum(fromHex('0001f203f4f5f6f7')), 0x220d);
  // A well-known IPv4 header (192.168.0.1 -> 192.168.0.199, UDP, TTL 64, DF): checksum b861.
  const hdr = fromHex('45000073 00004000 4011 0000 c0a80001 c0a800c7');
  t.equal(internetChecksum(hdr), 0xb861);
  hdr[10] = 0xb8; hdr[11] = 0x61;
  t.equal(internetChecksum(hdr), 0, 'a header with its checksum verifies to 0');
  t.equal(onesSum(hdr), 0xffff, 'and sums to 0xffff');
  // Odd length: the last byte is padded with a zero byte.
  t.equal(onesSum(fromHex('0102 03')), 0x0102 + 0x0300);

  // UDP 192.168.0.1:1234 -> 192.168.0.199:5678, payload "hi", computed by hand:
  // pseudo header c0a8+0001+c0a8+00c7+0011+000a, header 04d2+162e+000a+0000, data 6869
  // = 0x205a6 -> fold 0x05a8 -> complement 0xfa57.
  const seg = fromHex('04d2 162e 000a 0000 6869');
  t.equal(udpChecksum(parseIp('192.168.0.1'), parseIp('192.168.0.199'), seg), 0xfa57);
  const f = buildUdpFrame(spec(new TextEncoder().encode('hi')));
  t.equal(hex(f.subarray(ETH_HEADER + 20)), '04d2162e000afa576869', 'buildUdpFrame writes the same checksum');
  t.end();
});

t.test('UDP frames: build, decode, verify', (t) => {
  const payload = new TextEncoder().encode('hello, vpn');
  const f = buildUdpFrame(spec(payload, { id: 0x1234, ttl: 17 }));
  t.equal(f.length, 14 + 20 + 8 + payload.length);
  t.equal(etherType(f), ETHERTYPE_IPV4);
  t.same(dstMac(f), MAC_B);
  t.same(srcMac(f), MAC_A);
  t.ok(isIpv4Frame(f));
  t.equal(ipToString(ipv4Src(f)), '192.168.0.1');
  t.equal(ipToString(ipv4Dst(f)), '192.168.0.199');
  t.equal(hex(f.subarray(14, 34)), '4500002612340000' + '1111' + hex(f.subarray(24, 26)) + 'c0a80001c0a800c7');
  t.equal(onesSum(f, 14, 34), 0xffff, 'IPv4 header sums to 0xffff');
  // The UDP checksum over pseudo header + segment also sums to 0xffff.
  const seg = f.subarray(34);
  const pseudo = fromHex(`c0a80001 c0a800c7 0011 ${seg.length.toString(16).padStart(4, '0')}`);
  t.equal(onesSum(seg, 0, seg.length, onesSum(pseudo)), 0xffff, 'UDP checksum verifies');

  const d = decodeUdp(f);
  t.same({ ...d, payload: hex(d.payload) }, {
    srcIp: parseIp('192.168.0.1'), dstIp: parseIp('192.168.0.199'), srcPort: 1234, dstPort: 5678, payload: hex(payload),
  });
  t.equal(d.payload.buffer, f.buffer, 'payload is a view, not a copy');

  // Ethernet padding after the IP packet is ignored.
  const padded = new Uint8Array(60);
  const small = buildUdpFrame(spec(new Uint8Array(0)));
  padded.set(small);
  padded.fill(0xee, small.length);
  t.equal(decodeUdp(padded).payload.length, 0);
  t.ok(isIpv4Frame(padded));

  // A zero UDP checksum means "none" and is accepted.
  const noSum = f.slice(); noSum[40] = 0; noSum[41] = 0;
  t.equal(decodeUdp(noSum).srcPort, 1234);
  // A broken UDP checksum is rejected unless verification is off.
  const badSum = f.slice(); badSum[f.length - 1] ^= 1;
  rejects(t, () => decodeUdp(badSum), 'flipped payload bit', /UDP checksum/);
  t.equal(decodeUdp(badSum, false).payload.length, payload.length, 'verifyUdp=false skips it');

  fc.assert(fc.property(fc.uint8Array({ maxLength: 1500 }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }),
    fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (p, s, dd, sp, dp) => {
      const fr = buildUdpFrame(spec(p, { srcIp: s, dstIp: dd, srcPort: sp, dstPort: dp }));
      const x = decodeUdp(fr);
      return x.srcIp === s && x.dstIp === dd && x.srcPort === sp && x.dstPort === dp && hex(x.payload) === hex(p)
        && onesSum(fr, 14, 34) === 0xffff;
    }), { numRuns: 500 });
  t.end();
});

t.test('decodeUdp rejects malformed frames', (t) => {
  const f = buildUdpFrame(spec(new Uint8Array(10)));
  const mod = (fn: (b: Uint8Array) => void, fixIpSum = true): Uint8Array => {
    const b = f.slice(); fn(b);
    if (fixIpSum) { b[24] = 0; b[25] = 0; const c = internetChecksum(b, 14, 34); b[24] = c >> 8; b[25] = c & 0xff; }
    return b;
  };
  rejects(t, () => decodeUdp(f.subarray(0, 10)), 'short Ethernet', /Ethernet header/);
  rejects(t, () => decodeUdp(mod((b) => { b[12] = 0x86; b[13] = 0xdd; })), 'IPv6', /not IPv4/);
  rejects(t, () => decodeUdp(f.subarray(0, 30)), 'short IP', /truncated IPv4/);
  rejects(t, () => decodeUdp(mod((b) => { b[14] = 0x65; })), 'version 6', /version 6/);
  rejects(t, () => decodeUdp(mod((b) => { b[14] = 0x44; })), 'IHL 4', /header length 16/);
  rejects(t, () => decodeUdp(mod((b) => { b[17] = 200; })), 'total length too big', /exceeds/);
  rejects(t, () => decodeUdp(mod((b) => { b[16] = 0; b[17] = 10; })), 'total length < IHL', /total length 10/);
  rejects(t, () => decodeUdp(mod((b) => { b[22] ^= 0x10; }, false)), 'bad header checksum', /IPv4 header checksum/);
  rejects(t, () => decodeUdp(mod((b) => { b[23] = 6; })), 'TCP', /not UDP/);
  rejects(t, () => decodeUdp(mod((b) => { b[20] = 0x20; })), 'more fragments', /fragment/);
  rejects(t, () => decodeUdp(mod((b) => { b[21] = 0x01; })), 'fragment offset', /fragment/);
  rejects(t, () => decodeUdp(mod((b) => { b[17] = 20 + 4; })), 'UDP header cut', /truncated UDP/);
  rejects(t, () => decodeUdp(mod((b) => { b[39] = 7; })), 'UDP length < 8', /UDP length 7/);
  rejects(t, () => decodeUdp(mod((b) => { b[39] = 30; })), 'UDP length > IP payload', /UDP length 30/);
  t.end();
});

t.test('DHCP request detection', (t) => {
  const dhcp = (o: Partial<UdpFrameSpec>) => buildUdpFrame(spec(new Uint8Array(300), { srcIp: 0, dstIp: 0xffffffff, srcPort: 68, dstPort: 67, dstMac: BROADCAST_MAC, ...o }));
  t.ok(isDhcpRequest(dhcp({})));
  t.notOk(isDhcpRequest(dhcp({ srcPort: 67, dstPort: 68 })), 'a reply');
  t.notOk(isDhcpRequest(dhcp({ srcPort: 1000 })));
  t.ok(isDhcpRequest(dhcp({ srcPort: 1068, dstPort: 1067 }), 1067), 'configured port');
  t.notOk(isDhcpRequest(dhcp({}), 1067), 'other configured port');
  const frag = dhcp({}); frag[20] = 0x20;
  t.notOk(isDhcpRequest(frag), 'fragment');
  t.notOk(isDhcpRequest(buildArpRequest(MAC_A, 1, 2)), 'ARP');
  t.notOk(isDhcpRequest(new Uint8Array(0)));
  t.end();
});

t.test('ARP: request, decode, reply', (t) => {
  const hostIp = parseIp('10.250.0.5'), peerIp = parseIp('10.250.0.9');
  const req = buildArpRequest(MAC_A, hostIp, peerIp);
  t.equal(req.length, 42);
  t.equal(etherType(req), ETHERTYPE_ARP);
  t.equal(hex(req),
    'ffffffffffff' + '02000000000a' + '0806'
    + '0001' + '0800' + '06' + '04' + '0001'
    + '02000000000a' + '0afa0005' + '000000000000' + '0afa0009', 'who-has 10.250.0.9 tell 10.250.0.5');
  const a = decodeArp(req);
  t.same({ ...a, senderMac: macToString(a.senderMac), targetMac: macToString(a.targetMac) },
    { op: ARP_REQUEST, senderMac: '02:00:00:00:00:0a', senderIp: hostIp, targetMac: '00:00:00:00:00:00', targetIp: peerIp });
  t.not(a.senderMac.buffer, req.buffer, 'MACs are copies');

  const rep = buildArpReply(a, MAC_B);
  t.equal(hex(rep),
    '02000000000a' + 'fe0102030405' + '0806'
    + '0001' + '0800' + '06' + '04' + '0002'
    + 'fe0102030405' + '0afa0009' + '02000000000a' + '0afa0005', '10.250.0.9 is-at fe:01:02:03:04:05, to the asker');
  const r = decodeArp(rep);
  t.equal(r.op, ARP_REPLY);
  t.equal(r.senderIp, peerIp);
  t.same(r.senderMac, MAC_B);
  t.equal(r.targetIp, hostIp);
  t.same(r.targetMac, MAC_A);

  // Gratuitous ARP: sender and target IP are the same.
  const g = decodeArp(buildArpRequest(MAC_A, hostIp, hostIp));
  t.equal(g.senderIp, g.targetIp);

  rejects(t, () => decodeArp(req.subarray(0, 41)), 'truncated', /too short/);
  rejects(t, () => decodeArp(buildUdpFrame(spec(new Uint8Array(20)))), 'not ARP', /not ARP/);
  const bad = req.slice(); bad[19] = 16;
  rejects(t, () => decodeArp(bad), 'IPv6-sized ARP', /Ethernet\/IPv4/);
  const padded = new Uint8Array(60); padded.set(req);
  t.equal(decodeArp(padded).targetIp, peerIp, 'Ethernet padding ignored');
  t.end();
});

t.test('decoders only ever throw WireError', (t) => {
  const check = (fn: () => unknown): void => {
    try { fn(); } catch (e) { if (!(e instanceof WireError)) throw e; }
  };
  const all = (b: Uint8Array): void => {
    check(() => decodeUdp(b));
    check(() => decodeUdp(b, false));
    check(() => decodeArp(b));
    // The cheap checks never throw, and when they pass the readers are in bounds.
    if (isIpv4Frame(b)) { ipv4Src(b); ipv4Dst(b); if (!(ipv4Src(b) >= 0)) throw new Error('negative'); }
    isDhcpRequest(b);
    etherType(b);
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => { all(b); }), { numRuns: 3000 });
  // Random bytes behind a valid Ethernet + IPv4 prefix reach deeper.
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), fc.constantFrom(0x0800, 0x0806), (b, et) => {
    const f = new Uint8Array(14 + b.length); f[12] = et >> 8; f[13] = et & 0xff; f.set(b, 14);
    if (b.length > 0 && et === 0x0800) f[14] = 0x40 | (f[14]! & 0x0f);
    all(f);
  }), { numRuns: 3000 });

  const r = prng(0x5eed);
  const pool = [
    buildUdpFrame(spec(new Uint8Array(40))),
    buildUdpFrame(spec(new Uint8Array(0), { srcPort: 68, dstPort: 67 })),
    buildArpRequest(MAC_A, 1, 2),
    buildArpReply(decodeArp(buildArpRequest(MAC_A, 1, 2)), MAC_B),
  ];
  let ok = 0;
  for (let i = 0; i < 20000; i++) {
    const m = mutate(r, pool[r.int(pool.length)]!, null);
    all(m);
    try { decodeUdp(m, false); ok++; } catch { /* counted above */ }
  }
  t.ok(ok > 0, `some mutants still decode (${ok})`);
  t.end();
});
