// Router mode's broadcast and multicast (IpopConfig/EnableMulticast), in memory: a frame to
// the subnet's broadcast address, to 255.255.255.255 or to a multicast group goes as one
// unicast copy to every verified member, which writes it to its TAP once, addressed to the
// broadcast or the group's MAC. The sender gets no copy back, a VPN of another namespace
// none; with EnableMulticast false a member neither sends nor delivers them, and counts them.
import t from 'tap';
import { BROADCAST_MAC, buildUdpFrame, dstMac, ETH_HEADER, macToString, multicastMac, parseIp, srcMac } from '../src/vpn/frames.js';
import { IpopNode } from '../src/vpn/group/ipop-node.js';
import { claimAddress } from '../src/vpn/mapping.js';
import { startVpnRing } from './helpers/dht.js';
import { FakeTap } from './helpers/fake-tap.js';

const NS = 'mcastns';
const OTHER_NS = 'otherns';
const ONDEMAND = { enabled: true, threshold: 1_000_000, idleTimeout: 60 };

const frame = (srcMacAddr: Uint8Array, src: string, dst: string, dstMacAddr: Uint8Array, tag: number) =>
  buildUdpFrame({ srcMac: srcMacAddr, dstMac: dstMacAddr, srcIp: parseIp(src), dstIp: parseIp(dst), srcPort: 5353, dstPort: 5353, payload: new Uint8Array(64).fill(tag) });

t.test('broadcast and multicast copies in router mode', async (t) => {
  const ring = await startVpnRing(t, 8, 'mcastring');
  const { lab, nodes, dhts, vpns } = ring;
  const settle = () => lab.sleep(300);
  async function member(i: number, ip: string, multicast: boolean, ns = NS): Promise<{ v: IpopNode; tap: FakeTap }> {
    const tap = new FakeTap(i);
    await claimAddress(dhts[i]!.dht, dhts[i]!.registrations, ns, parseIp(ip), nodes[i]!.address, 600);
    const v = new IpopNode({ node: nodes[i]!, dht: dhts[i]!.dht, registrations: dhts[i]!.registrations, device: tap, namespace: ns, ip: parseIp(ip), prefix: 24, onDemand: ONDEMAND, multicast });
    await v.start();
    vpns.push(v);
    return { v, tap };
  }
  const A = await member(1, '10.8.0.10', true);
  const B = await member(2, '10.8.0.11', true);
  const C = await member(3, '10.8.0.12', true);
  const D = await member(4, '10.8.0.13', false);
  // Another namespace on the same overlay, with an address of the same subnet: not a member of ours.
  const X = await member(5, '10.8.0.14', true, OTHER_NS);
  for (const m of [A, B, C, D, X]) await m.v.syncMembers();
  t.same(A.v.members.map((m) => m.address.key).sort(), [nodes[2]!, nodes[3]!, nodes[4]!].map((n) => n.address.key).sort(), 'A\'s members: B, C and D');
  t.same(X.v.members, [], 'X has no members in its namespace');
  const taps: Record<string, FakeTap> = { A: A.tap, B: B.tap, C: C.tap, D: D.tap, X: X.tap };
  const clear = () => { for (const tap of Object.values(taps)) tap.clear(); };

  const kinds = [
    { what: 'the subnet\'s broadcast address', dst: '10.8.0.255', mac: BROADCAST_MAC },
    { what: 'the limited broadcast address', dst: '255.255.255.255', mac: BROADCAST_MAC },
    { what: 'an mDNS multicast group', dst: '224.0.0.251', mac: multicastMac(parseIp('224.0.0.251')) },
    { what: 'an SSDP multicast group', dst: '239.255.255.250', mac: multicastMac(parseIp('239.255.255.250')) },
  ];
  for (const [k, kind] of kinds.entries()) {
    await t.test(`to ${kind.what}: one copy to each member with EnableMulticast on, none back to the sender or to others`, async (t) => {
      clear();
      const before = { out: A.v.stats.multicastOut, tx: A.v.stats.txFrames, b: B.v.stats.multicastIn, d: D.v.stats.dropMulticastOff };
      const sent = frame(A.tap.mac, '10.8.0.10', kind.dst, kind.mac, k + 1);
      A.tap.inject(sent);
      t.ok(await lab.waitFor(() => B.tap.written.length >= 1 && C.tap.written.length >= 1 && D.v.stats.dropMulticastOff > before.d, 10_000), 'B and C got it, D dropped it');
      await settle();
      for (const [name, m] of [['B', B], ['C', C]] as const) {
        t.equal(m.tap.written.length, 1, `${name}: exactly one copy`);
        const got = m.tap.written[0]!;
        t.equal(macToString(dstMac(got)), macToString(kind.mac), `${name}: to ${macToString(kind.mac)}`);
        t.equal(macToString(srcMac(got)), macToString(m.v.gatewayMac), `${name}: from its gateway MAC`);
        t.same(got.subarray(ETH_HEADER), sent.subarray(ETH_HEADER), `${name}: the IP packet unchanged`);
      }
      t.equal(A.tap.written.length, 0, 'A (the sender): none back');
      t.equal(D.tap.written.length, 0, 'D (EnableMulticast false): none');
      t.equal(D.v.stats.dropMulticastOff - before.d, 1, 'D counts the drop');
      t.equal(X.tap.written.length, 0, 'X (another namespace): none');
      t.equal(A.v.stats.multicastOut - before.out, 1, 'A counts one frame sent to all');
      t.equal(B.v.stats.multicastIn - before.b, 1, 'B counts one received');
      t.equal(A.v.stats.txFrames - before.tx, 3, 'A sent one copy to each of B, C and D');
    });
  }

  await t.test('a member that joins later gets broadcasts after A\'s next member refresh, on-demand links or not', async (t) => {
    const E = await member(6, '10.8.0.15', true);
    taps.E = E.tap;
    const t0 = lab.now();
    // No syncMembers by hand: with EnableMulticast the list is re-read every 5 s (not every 30 s as with on-demand alone).
    t.ok(await lab.waitFor(() => A.v.members.some((m) => m.address.equals(nodes[6]!.address)), 12_000), `A lists E after ${((lab.now() - t0) / 1000).toFixed(1)} s`);
    clear();
    A.tap.inject(frame(A.tap.mac, '10.8.0.10', '10.8.0.255', BROADCAST_MAC, 11));
    t.ok(await lab.waitFor(() => E.tap.written.length === 1 && B.tap.written.length === 1, 10_000), 'E and B got the broadcast');
  });

  await t.test('a member with EnableMulticast false sends neither, and counts them', async (t) => {
    clear();
    const before = { drop: D.v.stats.dropMulticastOff, tx: D.v.stats.txFrames };
    D.tap.inject(frame(D.tap.mac, '10.8.0.13', '10.8.0.255', BROADCAST_MAC, 9));
    D.tap.inject(frame(D.tap.mac, '10.8.0.13', '224.0.0.251', multicastMac(parseIp('224.0.0.251')), 9));
    await settle();
    t.equal(D.v.stats.dropMulticastOff - before.drop, 2, 'both dropped at D\'s TAP');
    t.equal(D.v.stats.txFrames, before.tx, 'nothing sent');
    t.equal(D.v.stats.multicastOut, 0, 'no frame sent to all');
    for (const [name, tap] of Object.entries(taps)) t.equal(tap.written.length, 0, `${name}: none`);
  });

  await t.test('a member of another namespace reaches only its own members (none here)', async (t) => {
    clear();
    const before = X.v.stats.txFrames;
    X.tap.inject(frame(X.tap.mac, '10.8.0.14', '10.8.0.255', BROADCAST_MAC, 10));
    await settle();
    t.equal(X.v.stats.multicastOut, 1, 'X sent it to all its members');
    t.equal(X.v.stats.txFrames, before, 'of which there are none');
    for (const [name, tap] of Object.entries(taps)) t.equal(tap.written.length, 0, `${name}: none`);
  });
});
