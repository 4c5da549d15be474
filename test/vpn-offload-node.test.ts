// Offloaded frames through the VPN over an in-memory overlay (no root needed): a TCP
// super-packet from an offloading TAP reaches a device without offload as correct ordinary
// segments, and one with offload as the same super-packet with its kernel header; bad
// offload headers and forged sources are dropped.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Mode, Payload } from '../src/routing/ah-wire.js';
import { parseIp } from '../src/vpn/frames.js';
import { IpopNode } from '../src/vpn/group/ipop-node.js';
import { claimAddress } from '../src/vpn/mapping.js';
import { encodeOffloadHeader, GSO_NONE, OFFLOAD_HEADER } from '../src/vpn/offload.js';
import { startVpnRing } from './helpers/dht.js';
import { FakeTap } from './helpers/fake-tap.js';
import { buildSuper, segmentProblems, type Super } from './helpers/tcp-super.js';

/** The frames B should see: the sender's, with B's TAP MAC and B's gateway MAC. */
function asDelivered(s: Super, tap: FakeTap, v: IpopNode): Super {
  const frame = s.frame.slice();
  frame.set(tap.mac, 0);
  frame.set(v.gatewayMac, 6);
  return { ...s, frame };
}

t.test('offloaded frames over an in-memory overlay', async (t) => {
  const { lab, nodes, dhts, vpns } = await startVpnRing(t, 8, 'offns', 'ring formed');
  const member = async (i: number, ip: string, tap: FakeTap) => {
    const d = dhts[i]!;
    await claimAddress(d.dht, d.registrations, 'offns', parseIp(ip), nodes[i]!.address, 600);
    const v = new IpopNode({ node: nodes[i]!, dht: d.dht, registrations: d.registrations, device: tap, namespace: 'offns', ip: parseIp(ip), prefix: 24,
      onDemand: { enabled: true, threshold: 1 << 30, idleTimeout: 600 }, multicast: false });
    await v.start();
    vpns.push(v);
    return v;
  };
  // buildSuper's packets go from 10.0.0.1 to 10.0.0.2.
  const tapA = new FakeTap(undefined, true), tapB = new FakeTap(undefined, false);
  const A = await member(2, '10.0.0.1', tapA);
  const B = await member(5, '10.0.0.2', tapB);

  await t.test('a super-packet reaches a device without offload as checked segments', async (t) => {
    const s = buildSuper(false, randomBytes(20_000), 1296);
    tapA.injectOffloaded(s.meta, s.frame);
    const n = Math.ceil(20_000 / 1296);
    t.ok(await lab.waitFor(() => tapB.written.length >= n, 10_000), `B got ${tapB.written.length} frames`);
    t.equal(A.stats.txOffload, 1, 'one overlay message for the whole super-packet');
    t.equal(B.stats.softwareSegments, n, 'cut on arrival');
    t.ok(tapB.headers.every((h) => !h), 'written as plain frames');
    t.same(segmentProblems(asDelivered(s, tapB, B), tapB.written), [], 'checksums, lengths, sequence numbers, flags, payload');
    tapB.clear();
  });

  await t.test('a partial checksum is completed for a device without offload', async (t) => {
    const v4 = buildSuper(false, randomBytes(777), 1296, { gsoType: GSO_NONE, flags: 0x18 });
    tapA.injectOffloaded(v4.meta, v4.frame);
    t.ok(await lab.waitFor(() => tapB.written.length === 1, 10_000), 'B got the frame');
    t.same(segmentProblems(asDelivered(v4, tapB, B), [tapB.written[0]!]), [], 'TCP checksum valid');
    tapB.clear();
  });

  await t.test('a device with offload gets the super-packet whole, with the kernel header', async (t) => {
    tapB.offload = true;
    t.teardown(() => { tapB.offload = false; });
    const s = buildSuper(false, randomBytes(60_000), 1296, { seq: 1000 });
    const header = tapA.injectOffloaded(s.meta, s.frame);
    t.ok(await lab.waitFor(() => tapB.written.length === 1, 10_000), 'one write');
    const w = tapB.written.shift()!;
    t.ok(tapB.headers.shift(), 'written with its virtio header');
    t.same([...w.subarray(0, OFFLOAD_HEADER)], [...header], 'the header as the sending kernel gave it');
    t.ok(Buffer.from(w.subarray(OFFLOAD_HEADER)).equals(asDelivered(s, tapB, B).frame), 'the frame, MACs rewritten, bytes intact');
  });

  await t.test('bad offload headers and forged sources are dropped', async (t) => {
    const s = buildSuper(false, randomBytes(5000), 1296);
    const msg = new Uint8Array(OFFLOAD_HEADER + s.frame.length);
    encodeOffloadHeader(s.meta, msg);
    msg.set(s.frame, OFFLOAD_HEADER);
    const bad = msg.slice();
    bad[0] = 9; // no such GSO type
    const bad0 = B.stats.dropBadOffload, spoof0 = B.stats.dropSpoofed + B.stats.dropNotDirect;
    nodes[2]!.router.send(nodes[5]!.address, Mode.Exact, Payload.IpOffload, bad);
    nodes[2]!.router.send(nodes[5]!.address, Mode.Exact, Payload.IpOffload, msg.subarray(0, 6));
    t.ok(await lab.waitFor(() => B.stats.dropBadOffload === bad0 + 2, 5000), 'malformed headers counted');
    // Another node sends A's super-packet as if it were A.
    nodes[6]!.router.send(nodes[5]!.address, Mode.Exact, Payload.IpOffload, msg);
    // Refused as spoofed over a connection to B, or as routed (not from its source) otherwise.
    t.ok(await lab.waitFor(() => B.stats.dropSpoofed + B.stats.dropNotDirect > spoof0, 5000), 'forged source counted');
    t.equal(tapB.written.length, 0, 'nothing reached B\'s TAP');
    // B still works.
    nodes[2]!.router.send(nodes[5]!.address, Mode.Exact, Payload.IpOffload, msg);
    t.ok(await lab.waitFor(() => tapB.written.length > 0, 5000), 'a good one from A still arrives');
  });
});
