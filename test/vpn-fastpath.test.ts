// IpopConfig/FastPath (issue 17): a member whose TAP leaves room around each frame has its
// frames' headers written in front and sealed in place (Router.sendLent → SecureEdge.sendLent);
// one without room copies, as before. The bytes on the wire are the same, so the two kinds
// of member exchange traffic both ways, over secure edges, in virtual time.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Address } from '../src/address/address.js';
import { Session } from '../src/edge/session.js';
import { encodeAh, encodeAhInRoom, Mode, Payload, AH_HEADER, type AhHeader } from '../src/routing/ah-wire.js';
import type { Edge, Room } from '../src/transport/edge.js';
import { FRAME_ROOM } from '../src/vpn/frame-path.js';
import { buildUdpFrame, parseIp } from '../src/vpn/frames.js';
import { IpopNode } from '../src/vpn/group/ipop-node.js';
import { claimAddress } from '../src/vpn/mapping.js';
import { VirtualClock } from '../src/util/virtual-clock.js';
import { seededRandom } from '../src/util/random.js';
import { startVpnRing } from './helpers/dht.js';
import { FakeTap } from './helpers/fake-tap.js';
import { buildSuper, segmentProblems } from './helpers/tcp-super.js';

const NS = 'fastns';
const ONDEMAND = { enabled: true, threshold: 1, idleTimeout: 600 };

/** payload placed with `head`/`tail` free bytes around it (filled with 0xee). */
function inRoom(payload: Uint8Array, head: number, tail: number): Uint8Array {
  const b = new Uint8Array(head + payload.length + tail).fill(0xee);
  b.set(payload, head);
  return b.subarray(head, head + payload.length);
}

t.test('encodeAhInRoom writes the bytes encodeAh would, in front of the payload', async (t) => {
  const rnd = seededRandom(3);
  const h: AhHeader = { mode: Mode.Exact, flags: 0, hops: 258, ttl: 40, src: Address.random(rnd), dst: Address.random(rnd), ptype: Payload.IpOffload };
  const payload = randomBytes(1400);
  const lent = inRoom(payload, 64, 16);
  const pkt = encodeAhInRoom(h, lent, { head: 64, tail: 16 })!;
  t.ok(pkt, 'room enough');
  t.equal(pkt.buffer, lent.buffer, 'no new buffer');
  t.equal(pkt.byteOffset, lent.byteOffset - AH_HEADER, 'the header right in front');
  t.same(Buffer.from(pkt), Buffer.from(encodeAh(h, payload)), 'identical bytes');
  t.equal(encodeAhInRoom(h, inRoom(payload, 48, 0), { head: 48, tail: 0 }), undefined, 'too little room: undefined, nothing written');
  t.equal(encodeAhInRoom(h, payload, { head: 64, tail: 0 }), undefined, 'a claimed room that is not there is refused');
});

t.test('Session.sealInPlace: the packet seal() makes, in the lent buffer, and it opens', async (t) => {
  const clock = new VirtualClock();
  const keys = { send: randomBytes(32), recv: randomBytes(32) };
  const stats = () => ({ decryptFailures: 0, replays: 0, tooOld: 0, badEpoch: 0, malformed: 0, rekeys: 0 });
  const a = new Session(keys, { clock, rekeyAfterPackets: 3 }, stats());
  const b = new Session(keys, { clock, rekeyAfterPackets: 3 }, stats());
  const rx = new Session({ send: keys.recv, recv: keys.send }, { clock }, stats());
  for (let i = 0; i < 7; i++) { // across two rekeys
    const pt = randomBytes(i === 6 ? 65_000 : 1400);
    const want = a.seal(0x10, pt);
    const lent = inRoom(pt, 10, 16);
    const got = b.sealInPlace(0x10, lent);
    t.equal(got.buffer, lent.buffer, `packet ${i}: sealed where it lay`);
    t.same(Buffer.from(got), Buffer.from(want), `packet ${i}: same bytes as seal()`);
    const o = rx.openInPlace(got.slice());
    t.same(o && Buffer.from(o.plaintext), pt, `packet ${i}: opens to the plaintext`);
  }
  t.throws(() => b.sealInPlace(0x10, inRoom(randomBytes(100), 9, 16)), /no room/, 'too little headroom');
  t.throws(() => b.sealInPlace(0x10, inRoom(randomBytes(100), 10, 15)), /no room/, 'too little tailroom');
});

t.test('FastPath true and false interoperate over secure edges', async (t) => {
  const { lab, nodes, dhts, vpns } = await startVpnRing(t, 8, NS, 'secure ring formed', 7, { secure: true });
  t.ok(nodes.every((n) => [...n.table.all()].every((c) => c.edge.id.startsWith('secure/'))), 'every connection is a secure edge');
  const member = async (i: number, ip: string, tap: FakeTap, multicast = false) => {
    const d = dhts[i]!;
    await claimAddress(d.dht, d.registrations, NS, parseIp(ip), nodes[i]!.address, 600);
    const v = new IpopNode({ node: nodes[i]!, dht: d.dht, registrations: d.registrations, device: tap, namespace: NS, ip: parseIp(ip), prefix: 24, onDemand: ONDEMAND, multicast });
    await v.start();
    vpns.push(v);
    return v;
  };
  // buildSuper's packets go from 10.0.0.1 to 10.0.0.2.
  const tapFast = new FakeTap(undefined, true, FRAME_ROOM), tapRef = new FakeTap(undefined, false);
  const fast = await member(2, '10.0.0.1', tapFast, true);
  const ref = await member(5, '10.0.0.2', tapRef, true);
  const third = new FakeTap(undefined, false);
  const other = await member(6, '10.0.0.3', third, true);
  for (const v of [fast, ref, other]) await v.syncMembers();
  t.equal(fast.members.length, 2, 'the fast member lists both others');

  // Counts which send each node's edge to the other got.
  const calls = { lent: 0, copied: 0 };
  const spy = (e: Edge) => {
    const send = e.send.bind(e), lent = e.sendLent?.bind(e);
    e.send = (p) => { calls.copied++; send(p); };
    if (lent) e.sendLent = (p: Uint8Array, r: Room) => { calls.lent++; lent(p, r); };
  };
  const udp = (src: string, dst: string, n: number, mac: Uint8Array) =>
    buildUdpFrame({ srcMac: mac, dstMac: new Uint8Array(6).fill(0xfe), srcIp: parseIp(src), dstIp: parseIp(dst), srcPort: 4000, dstPort: 5000, payload: randomBytes(n) });

  // The first frame waits for the on-demand link (copied); once it is up, frames go straight.
  tapFast.inject(udp('10.0.0.1', '10.0.0.2', 100, tapFast.mac));
  t.ok(await lab.waitFor(() => tapRef.written.length === 1 && !!nodes[2]!.table.get(nodes[5]!.address), 10_000), 'link up, first frame through');
  tapRef.clear();
  spy(nodes[2]!.table.get(nodes[5]!.address)!.edge);
  spy(nodes[5]!.table.get(nodes[2]!.address)!.edge);

  await t.test('frames both ways, bytes intact after the MACs', async (t) => {
    const inPlace0 = fast.stats.txInPlace;
    const toRef = [200, 1400, 1472].map((n) => udp('10.0.0.1', '10.0.0.2', n, tapFast.mac));
    const toFast = [200, 1400, 1472].map((n) => udp('10.0.0.2', '10.0.0.1', n, tapRef.mac));
    for (const f of toRef) tapFast.inject(f);
    for (const f of toFast) tapRef.inject(f);
    t.ok(await lab.waitFor(() => tapRef.written.length === 3 && tapFast.written.length === 3, 10_000), 'all six frames arrived');
    t.same(tapRef.written.map((w) => Buffer.from(w.subarray(12))), toRef.map((f) => Buffer.from(f.subarray(12))), 'fast → reference');
    t.same(tapFast.written.map((w) => Buffer.from(w.subarray(12))), toFast.map((f) => Buffer.from(f.subarray(12))), 'reference → fast');
    t.equal(calls.lent, 3, 'the fast member sealed its three in place');
    t.equal(calls.copied, 3, 'the reference member copied its three');
    t.equal(fast.stats.txInPlace - inPlace0, 3, 'counted as sent in place');
    t.equal(ref.stats.txInPlace, 0, 'none in place without room');
    tapRef.clear(); tapFast.clear();
  });

  await t.test('a 60 KB super-packet sealed in place reaches the reference member as checked segments', async (t) => {
    const s = buildSuper(false, randomBytes(60_000), 1296);
    const before = calls.lent;
    tapFast.injectOffloaded(s.meta, s.frame);
    const n = Math.ceil(60_000 / 1296);
    t.ok(await lab.waitFor(() => tapRef.written.length >= n, 10_000), `got ${tapRef.written.length} of ${n} segments`);
    t.equal(calls.lent, before + 1, 'one message, sealed in place');
    const want = s.frame.slice();
    want.set(tapRef.mac, 0);
    want.set(ref.gatewayMac, 6);
    t.same(segmentProblems({ ...s, frame: want }, tapRef.written), [], 'checksums, lengths, sequence numbers, payload');
    tapRef.clear();
  });

  await t.test('a broadcast is not lent: every member gets the plaintext', async (t) => {
    const b = udp('10.0.0.1', '10.0.0.255', 300, tapFast.mac);
    const before = calls.lent;
    tapFast.inject(b);
    t.ok(await lab.waitFor(() => tapRef.written.length === 1 && third.written.length === 1, 10_000), 'both other members got it');
    for (const w of [tapRef.written[0]!, third.written[0]!]) t.same(Buffer.from(w.subarray(12)), Buffer.from(b.subarray(12)), 'intact');
    t.equal(calls.lent, before, 'copies, not lent');
    t.equal(fast.stats.multicastOut, 1);
  });
});
