// IPv6 in the VPN: member addresses (namespace /64 + IPv4), neighbour discovery answered
// locally, and IPv6 packets between members over an in-memory overlay with source checks.
import t from 'tap';
import { parseIp } from '../src/vpn/frames.js';
import {
  buildNeighborAdvert, decodeNeighborSolicit, ipv6PrefixFor, ipv6ToString, mappedIpv4, mappedIpv6, namespacePrefix, parseIpv6,
} from '../src/vpn/ipv6.js';
import { IpopNode } from '../src/vpn/group/ipop-node.js';
import { FakeTap } from './helpers/fake-tap.js';
import { claimAddress } from '../src/vpn/mapping.js';
import { parseNodeConfig } from '../src/config/node-config.js';
import { Mode, Payload } from '../src/routing/ah-wire.js';
import { startVpnRing } from './helpers/dht.js';

/** An independent checksum (RFC 1071 over the IPv6 pseudo-header and the ICMPv6 message). */
function icmp6Sum(f: Uint8Array): number {
  const len = (f[18]! << 8) | f[19]!;
  const words: number[] = [];
  for (let i = 22; i < 54; i += 2) words.push((f[i]! << 8) | f[i + 1]!);
  words.push(len >>> 16, len & 0xffff, 0, f[20]!);
  for (let i = 54; i < 54 + len; i += 2) words.push((f[i]! << 8) | (f[i + 1] ?? 0));
  let s = words.reduce((a, b) => a + b, 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s; // 0xffff when the stored checksum is right
}

const MAC_A = new Uint8Array([0x02, 0, 0, 0, 0, 0x0a]);

/** An IPv6 frame: ICMPv6 (next header 58, hop limit 255) or UDP-like payload (next header 17). */
function ipv6Frame(src: Uint8Array, dst: Uint8Array, nextHeader: number, payload: Uint8Array, dstMac: Uint8Array = new Uint8Array(6).fill(0x33)): Uint8Array {
  const f = new Uint8Array(54 + payload.length);
  f.set(dstMac, 0);
  f.set(MAC_A, 6);
  f[12] = 0x86; f[13] = 0xdd;
  f[14] = 0x60;
  f[18] = payload.length >>> 8; f[19] = payload.length & 0xff;
  f[20] = nextHeader;
  f[21] = nextHeader === 58 ? 255 : 64;
  f.set(src, 22);
  f.set(dst, 38);
  f.set(payload, 54);
  return f;
}

function neighborSolicit(src: Uint8Array, target: Uint8Array): Uint8Array {
  const icmp = new Uint8Array(32);
  icmp[0] = 135;
  icmp.set(target, 8);
  icmp[24] = 1; icmp[25] = 1; icmp.set(MAC_A, 26); // source link-layer address option
  const dst = parseIpv6('ff02::1:ff00:0');
  dst.set(target.subarray(13), 13);
  const f = ipv6Frame(src, dst, 58, icmp);
  const sum = icmp6Sum(f); // over a zero checksum field
  const c = ~sum & 0xffff;
  f[56] = c >>> 8; f[57] = c & 0xff;
  return f;
}

t.test('IPv6 text form and member addresses', async (t) => {
  for (const [text, norm] of [
    ['fd50:0dbc:41f2:4a3c::', 'fd50:dbc:41f2:4a3c::'], ['::', '::'], ['::1', '::1'], ['2001:db8::1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], ['fe80::1:2:3:4', 'fe80::1:2:3:4'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['::ffff:10.9.0.1', '::ffff:a09:1'], ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
  ]) t.equal(ipv6ToString(parseIpv6(text!)), norm, `${text} → ${norm}`);
  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '12345::', '1:2:3:4:5:6:7', '::1.2.3.256']) t.throws(() => parseIpv6(bad), /not an IPv6 address/, bad);
  const p = namespacePrefix('ipopns');
  t.equal(p.length, 8);
  t.equal(p[0], 0xfd, 'a ULA prefix');
  t.same(namespacePrefix('ipopns'), p, 'the same namespace gives the same prefix');
  t.notSame(namespacePrefix('other'), p, 'another namespace another');
  const a = mappedIpv6(p, parseIp('10.9.0.11'));
  t.match(ipv6ToString(a), /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::a09:b$/, ipv6ToString(a));
  t.equal(mappedIpv4(p, a, 0), parseIp('10.9.0.11'), 'the IPv4 address comes back out');
  t.equal(mappedIpv4(namespacePrefix('other'), a, 0), undefined, 'not under another prefix');
  const b = a.slice(); b[10] = 1;
  t.equal(mappedIpv4(p, b, 0), undefined, 'not when the middle bits are set');
  t.same(ipv6PrefixFor('fd50:dbc:41f2:4a3c::', 'x'), parseIpv6('fd50:dbc:41f2:4a3c::').slice(0, 8), 'a configured prefix');
  t.equal(ipv6PrefixFor('', 'x'), undefined, 'off');
});

t.test('IPv6Prefix in IpopConfig', async (t) => {
  const cfg = (x: string) => parseNodeConfig(`<NodeConfig><BrunetNamespace>r</BrunetNamespace><IpopConfig><IpopNamespace>n</IpopNamespace>${x}</IpopConfig></NodeConfig>`).ipop!;
  t.equal(cfg('').ipv6Prefix, 'auto', 'derived from the namespace by default');
  t.equal(cfg('<IPv6Prefix>off</IPv6Prefix>').ipv6Prefix, '', 'off');
  t.equal(cfg('<IPv6Prefix>FD50:dbc:41f2:4a3c::/64</IPv6Prefix>').ipv6Prefix, 'fd50:dbc:41f2:4a3c::');
  t.throws(() => cfg('<IPv6Prefix>fd50::/48</IPv6Prefix>'), /IpopConfig\/IPv6Prefix: the prefix must be a \/64/);
  t.throws(() => cfg('<IPv6Prefix>10.0.0.0</IPv6Prefix>'), /IpopConfig\/IPv6Prefix: expected auto, off or an IPv6/);
});

t.test('Neighbor Solicitation in, Neighbor Advertisement out', async (t) => {
  const p = namespacePrefix('ns');
  const me = mappedIpv6(p, parseIp('10.9.0.10')), peer = mappedIpv6(p, parseIp('10.9.0.11'));
  const f = neighborSolicit(me, peer);
  const ns = decodeNeighborSolicit(f);
  t.ok(ns, 'decoded');
  t.same(ns?.target, peer);
  t.same(ns?.mac, MAC_A);
  const bad = f.slice(); bad[70] ^= 1;
  t.equal(decodeNeighborSolicit(bad), undefined, 'a wrong checksum is refused');
  const hop = f.slice(); hop[21] = 64;
  t.equal(decodeNeighborSolicit(hop), undefined, 'a forwarded one (hop limit below 255) is refused');
  t.equal(decodeNeighborSolicit(f.subarray(0, 60)), undefined, 'a truncated one is refused');
  const gw = new Uint8Array([0xfe, 1, 2, 3, 4, 5]);
  const na = buildNeighborAdvert(ns!, gw);
  t.equal(icmp6Sum(na), 0xffff, 'the advertisement\'s checksum is right');
  t.same(na.subarray(0, 6), MAC_A, 'to the asker\'s MAC');
  t.same(na.subarray(6, 12), gw, 'from the gateway MAC');
  t.same(na.subarray(22, 38), peer, 'from the target address');
  t.same(na.subarray(38, 54), me, 'to the asker');
  t.equal(na[54], 136, 'type 136');
  t.equal(na[58], 0x60, 'solicited and override');
  t.same(na.subarray(62, 78), peer, 'target');
  t.same([...na.subarray(78, 80)], [2, 1], 'target link-layer address option');
  t.same(na.subarray(80, 86), gw);
  const dad = buildNeighborAdvert({ ...ns!, src: new Uint8Array(16) }, gw);
  t.equal(ipv6ToString(dad, 38), 'ff02::1', 'an answer to an address-less asker goes to all nodes');
  t.equal(icmp6Sum(dad), 0xffff);
});

t.test('IPv6 between members over an in-memory overlay', async (t) => {
  const N = 6;
  const { lab, nodes, dhts, vpns } = await startVpnRing(t, N, 'v6');
  const prefix = namespacePrefix('v6ns');
  const tapA = new FakeTap(MAC_A), tapB = new FakeTap(new Uint8Array([0x02, 0, 0, 0, 0, 0x0b]));
  const member = async (i: number, ip: string, tap: FakeTap, v6 = true) => {
    await claimAddress(dhts[i]!.dht, dhts[i]!.registrations, 'v6ns', parseIp(ip), nodes[i]!.address, 600);
    const v = new IpopNode({
      node: nodes[i]!, dht: dhts[i]!.dht, registrations: dhts[i]!.registrations, device: tap, namespace: 'v6ns', ip: parseIp(ip), prefix: 24,
      onDemand: { enabled: true, threshold: 1_000_000, idleTimeout: 60 }, multicast: false, ...(v6 ? { ipv6Prefix: prefix } : {}),
    });
    await v.start();
    vpns.push(v);
    return v;
  };
  const A = await member(1, '10.9.0.10', tapA);
  const B = await member(4, '10.9.0.11', tapB);
  const a6 = mappedIpv6(prefix, A.ip), b6 = mappedIpv6(prefix, B.ip);

  await t.test('a Neighbor Solicitation for a member is answered once its owner is known', async (t) => {
    tapA.inject(neighborSolicit(a6, b6));
    const na = await lab.waitFor(() => tapA.written.some((f) => f[12] === 0x86 && f[54] === 136), 10_000);
    t.ok(na, 'a Neighbor Advertisement was written to A\'s TAP');
    const f = tapA.written.find((x) => x[12] === 0x86 && x[54] === 136)!;
    t.same(f.subarray(80, 86), A.gatewayMac, 'naming the gateway MAC');
    const before = A.stats.ndReplies;
    tapA.inject(neighborSolicit(a6, a6));
    tapA.inject(neighborSolicit(new Uint8Array(16), a6));
    tapA.inject(neighborSolicit(a6, mappedIpv6(prefix, parseIp('10.9.1.5'))));
    await lab.sleep(200);
    t.equal(A.stats.ndReplies, before, 'none for our own address (duplicate detection) or outside the subnet');
  });

  await t.test('IPv6 packets travel both ways with rewritten MACs', async (t) => {
    const payload = new Uint8Array(300).map((_, i) => i & 0xff);
    tapA.inject(ipv6Frame(a6, b6, 17, payload, A.gatewayMac));
    t.ok(await lab.waitFor(() => tapB.written.some((f) => f[12] === 0x86 && f[20] === 17), 10_000), 'B\'s TAP got the packet');
    const got = tapB.written.find((f) => f[12] === 0x86 && f[20] === 17)!;
    t.same(got.subarray(0, 6), tapB.mac, 'to B\'s MAC');
    t.same(got.subarray(6, 12), B.gatewayMac, 'from B\'s gateway MAC');
    t.same(got.subarray(54), payload, 'the payload intact');
    tapB.inject(ipv6Frame(b6, a6, 17, payload.subarray(0, 50), B.gatewayMac));
    t.ok(await lab.waitFor(() => tapA.written.some((f) => f[12] === 0x86 && f[20] === 17), 10_000), 'and back to A');
  });

  await t.test('foreign sources and non-member destinations stay out', async (t) => {
    const rx = tapB.written.length;
    const notOurs = A.stats.dropNotOurSource;
    tapA.inject(ipv6Frame(parseIpv6('fe80::1'), b6, 17, new Uint8Array(20), A.gatewayMac));
    tapA.inject(ipv6Frame(mappedIpv6(prefix, parseIp('10.9.0.99')), b6, 17, new Uint8Array(20), A.gatewayMac));
    t.equal(A.stats.dropNotOurSource, notOurs + 2, 'link-local and other members\' sources are not sent');
    const unmapped = A.stats.dropIpv6NotMapped;
    tapA.inject(ipv6Frame(a6, parseIpv6('2001:db8::1'), 17, new Uint8Array(20), A.gatewayMac));
    tapA.inject(ipv6Frame(a6, parseIpv6('ff02::16'), 58, new Uint8Array(20)));
    t.equal(A.stats.dropIpv6NotMapped, unmapped + 2, 'destinations outside the namespace prefix (and multicast) are not sent');
    // A member forging another member's IPv6 source over the overlay is caught by B.
    const spoofed = B.stats.dropSpoofed + B.stats.dropNotDirect;
    const C = await member(2, '10.9.0.12', new FakeTap(new Uint8Array([0x02, 0, 0, 0, 0, 0x0c])));
    const forged = ipv6Frame(a6, b6, 17, new Uint8Array(20), C.gatewayMac);
    C.node.router.send(B.node.address, Mode.Exact, Payload.Ip, forged);
    t.ok(await lab.waitFor(() => B.stats.dropSpoofed + B.stats.dropNotDirect > spoofed, 10_000), 'a forged IPv6 source is dropped by the receiver');
    await lab.sleep(200);
    t.equal(tapB.written.length, rx, 'nothing reached B\'s TAP');
  });

  await t.test('with IPv6 off, IPv6 frames are not carried', async (t) => {
    const tapD = new FakeTap(new Uint8Array([0x02, 0, 0, 0, 0, 0x0d]));
    const D = await member(3, '10.9.0.13', tapD, false);
    const before = D.stats.dropOtherEtherType;
    tapD.inject(ipv6Frame(mappedIpv6(prefix, D.ip), b6, 17, new Uint8Array(20), D.gatewayMac));
    t.equal(D.stats.dropOtherEtherType, before + 1, 'dropped at the TAP');
    t.equal(D.stats.txFrames, 0, 'nothing sent');
  });
});
