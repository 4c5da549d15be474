// SocialVPN's data path over an in-memory overlay (no root): Alice (one device), Bob (two
// devices, one user key) and Carol, with friendships Alice–Bob and Bob–Carol. Devices find
// their friends' devices in the DHT, prove the friendship both ways with hellos over the
// connection between them, answer ARP for friends' local IPs, and translate packets both ways
// (checked against the checksums). Non-friends' frames, forged certificates, hellos that name
// another node and friend removal are each refused and counted.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { checkDeviceCert } from '../src/cli/social-mode.js';
import { Mode, Payload } from '../src/routing/ah-wire.js';
import {
  ARP_REPLY, buildArpRequest, buildUdpFrame, decodeArp, decodeUdp, internetChecksum, ipToString, ipv4Dst, ipv4Src, parseIp, parseMac,
} from '../src/vpn/frames.js';
import { AddressBook } from '../src/vpn/social/address-book.js';
import { issueDeviceCert } from '../src/vpn/social/device-cert.js';
import { SvpnNameTable } from '../src/vpn/social/names.js';
import { SocialNode } from '../src/vpn/social/social-node.js';
import { socialPeers } from '../src/vpn/social/state.js';
import { UserKey } from '../src/vpn/social/user-key.js';
import { encodeHello, FLAG_ANSWER, FLAG_FRIEND } from '../src/vpn/social/wire.js';
import { startVpnRing } from './helpers/dht.js';
import { FakeTap } from './helpers/fake-tap.js';
import { buildSuper, pseudo, refSum, segmentProblems, set16, type Super } from './helpers/tcp-super.js';

const SELF = parseIp('172.31.0.1');
const HOST_MAC = parseMac('02:00:00:00:00:aa');

/** Gives a buildSuper IPv4 super-packet other addresses, with its header checksum and partial TCP sum redone. */
function readdress(s: Super, src: number, dst: number): void {
  const f = s.frame;
  new DataView(f.buffer, f.byteOffset).setUint32(26, src);
  new DataView(f.buffer, f.byteOffset).setUint32(30, dst);
  set16(f, 24, 0);
  set16(f, 24, ~refSum(f.subarray(14, s.tcp)) & 0xffff);
  set16(f, s.tcp + 16, refSum(pseudo(f, false, 6, f.length - s.tcp)));
}

t.test('SocialVPN over an in-memory overlay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svpn-node-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ring = await startVpnRing(t, 8, 'svpnring');
  const { lab, nodes, dhts, vpns } = ring;
  const users = { alice: UserKey.generate('alice'), bob: UserKey.generate('bob'), carol: UserKey.generate('carol'), mallory: UserKey.generate('mallory') };
  const lists: Record<string, Array<{ key: Uint8Array; alias: string }>> = {};
  const device = async (name: string, i: number, user: UserKey, friends: UserKey[], offload = false) => {
    const n = nodes[i]!;
    const tap = new FakeTap(0x10 + i, offload);
    const book = AddressBook.load(join(dir, `${name}.addresses.json`), '172.31.0.0/16');
    lists[name] = friends.map((f) => ({ key: f.publicKey, alias: f.name }));
    const cert = issueDeviceCert(user, name, n.address, lab.now());
    const components = { address: n.address, table: n.table, router: n.router, rpc: n.rpc, link: n.link, connector: n.connector, clock: lab.clock, log: n.log, listeners: n.listeners };
    const s = new SocialNode({
      node: components, dht: dhts[i]!.dht, registrations: dhts[i]!.registrations, device: tap, userKey: user.publicKey, ip: SELF, prefix: 16,
      check: checkDeviceCert, friends: () => lists[name]!, ownCert: () => cert.bytes,
      localIpFor: (a, label) => book.ipFor(a.key, label), nodeAt: (ip) => book.lookup(ip),
    });
    await s.start();
    vpns.push(s);
    return { s, tap, node: n, book };
  };
  const A = await device('laptop', 1, users.alice, [users.bob], true);
  const B = await device('desktop', 3, users.bob, [users.alice, users.carol]);
  const B2 = await device('phone', 5, users.bob, [users.alice, users.carol]);
  const C = await device('tablet', 6, users.carol, [users.bob]);
  const online = (x: { s: SocialNode }) => socialPeers(x.s).filter((p) => p.status === 'online').map((p) => p.name).sort();
  const settled = await lab.waitFor(() => online(A).length === 2 && online(B).length === 2 && online(B2).length === 2 && online(C).length === 2, 20_000);
  t.ok(settled, 'every device sees its friends\' devices online');
  t.same(online(A), ['desktop.bob.svpn', 'phone.bob.svpn'], 'Alice: both of Bob\'s devices, not Carol\'s');
  t.same(online(B), ['laptop.alice.svpn', 'tablet.carol.svpn'], 'Bob: Alice and Carol');
  t.same(online(C), ['desktop.bob.svpn', 'phone.bob.svpn'], 'Carol: Bob\'s devices, not Alice\'s');
  t.notOk(socialPeers(A.s).some((p) => p.user === 'carol'), 'Alice knows no device of Carol\'s');
  if (!settled) return;

  const bobAtAlice = A.s.devices.get(B.node.address)!;
  const aliceAtBob = B.s.devices.get(A.node.address)!;
  t.not(bobAtAlice.localIp, SELF, `Bob's desktop has a local IP at Alice (${ipToString(bobAtAlice.localIp)})`);

  await t.test('names: <device>.<user>.svpn, <user>.svpn and PTR', async (t) => {
    const names = new SvpnNameTable(A.s.devices);
    t.equal(names.lookupA('desktop.bob.svpn'), bobAtAlice.localIp);
    t.equal(names.lookupA('PHONE.Bob.svpn.'), A.s.devices.get(B2.node.address)!.localIp, 'case and trailing dot');
    t.ok([bobAtAlice.localIp, A.s.devices.get(B2.node.address)!.localIp].includes(names.lookupA('bob.svpn')!), 'bob.svpn is one of Bob\'s devices');
    t.equal(names.lookupA('tablet.carol.svpn'), undefined, 'no name for Carol\'s device');
    t.equal(names.lookupPtr(bobAtAlice.localIp), 'desktop.bob.svpn');
  });

  await t.test('ARP for a friend device\'s local IP is answered', async (t) => {
    A.tap.clear();
    A.tap.inject(buildArpRequest(HOST_MAC, SELF, bobAtAlice.localIp));
    t.ok(await lab.waitFor(() => A.tap.written.length === 1, 2000), 'answered');
    t.equal(decodeArp(A.tap.written[0]!).op, ARP_REPLY);
    A.tap.clear();
    A.tap.inject(buildArpRequest(HOST_MAC, SELF, parseIp('172.31.200.200')));
    await lab.sleep(200);
    t.equal(A.tap.written.length, 0, 'an IP nobody has: no answer');
  });

  await t.test('a UDP packet is translated both ways, checksums valid', async (t) => {
    B.tap.clear();
    const payload = new TextEncoder().encode('hello bob, from alice');
    A.tap.inject(buildUdpFrame({ srcMac: HOST_MAC, dstMac: A.s.gatewayMac, srcIp: SELF, dstIp: bobAtAlice.localIp, srcPort: 4000, dstPort: 5000, payload }));
    t.ok(await lab.waitFor(() => B.tap.written.length === 1, 3000), 'arrived at Bob');
    const f = B.tap.written[0]!;
    t.equal(ipToString(ipv4Src(f)), ipToString(aliceAtBob.localIp), 'source: Bob\'s local IP for Alice');
    t.equal(ipToString(ipv4Dst(f)), '172.31.0.1', 'destination: Bob\'s own address');
    t.equal(internetChecksum(f, 14, 34), 0, 'IPv4 header checksum');
    const u = decodeUdp(f, true);
    t.same(Buffer.from(u.payload).toString(), 'hello bob, from alice', 'UDP checksum verified, payload intact');
    // And back.
    A.tap.clear();
    B.tap.inject(buildUdpFrame({ srcMac: HOST_MAC, dstMac: B.s.gatewayMac, srcIp: SELF, dstIp: aliceAtBob.localIp, srcPort: 5000, dstPort: 4000, payload }));
    t.ok(await lab.waitFor(() => A.tap.written.length === 1, 3000), 'the reply arrived at Alice');
    t.equal(ipToString(ipv4Src(A.tap.written[0]!)), ipToString(bobAtAlice.localIp), 'from Bob\'s local IP at Alice');
    t.ok(decodeUdp(A.tap.written[0]!, true), 'checksum valid');
  });

  await t.test('a TCP super-packet is translated whole and cut for a device without offload', async (t) => {
    const s = buildSuper(false, randomBytes(20_000), 1296);
    readdress(s, SELF, bobAtAlice.localIp);
    // What Bob's TAP must get: the same super-packet as Bob sees it, cut.
    const want = buildSuper(false, s.payload, 1296);
    readdress(want, aliceAtBob.localIp, SELF);
    want.frame.set(B.tap.mac, 0);
    want.frame.set(B.s.gatewayMac, 6);
    B.tap.clear();
    A.tap.injectOffloaded(s.meta, s.frame);
    const n = Math.ceil(20_000 / 1296);
    t.ok(await lab.waitFor(() => B.tap.written.length >= n, 5000), `Bob got ${B.tap.written.length} segments`);
    t.equal(A.s.stats.txOffload, 1, 'one overlay message');
    t.same(segmentProblems(want, B.tap.written), [], 'addresses, checksums, lengths, sequence numbers');
  });

  await t.test('frames and hellos from non-friends are refused and counted', async (t) => {
    // Carol's node sends a frame to Alice over a connection of its own: Alice does not list Carol.
    const c = await C.node.connector.connectTo(A.node.address, 'greedy', 'structured.ondemand').catch(() => []);
    t.ok(c.length > 0 || C.node.table.get(A.node.address), 'Carol\'s node links to Alice\'s');
    const conn = C.node.table.get(A.node.address)!;
    const before = A.s.stats.dropNotFriend;
    const frame = buildUdpFrame({ srcMac: HOST_MAC, dstMac: HOST_MAC, srcIp: SELF, dstIp: SELF, srcPort: 1, dstPort: 2, payload: new Uint8Array(8) });
    C.node.router.send(A.node.address, Mode.Exact, Payload.SocialIp, frame, conn);
    t.ok(await lab.waitFor(() => A.s.stats.dropNotFriend > before, 2000), 'a non-friend\'s frame is dropped');
    const hellos = A.s.devices.stats.notFriend;
    const carolCert = issueDeviceCert(users.carol, 'tablet', C.node.address, lab.now()).bytes;
    C.node.router.send(A.node.address, Mode.Exact, Payload.SocialControl, encodeHello({ flags: FLAG_FRIEND | FLAG_ANSWER, ownIp: SELF, yourIp: SELF, cert: carolCert }), conn);
    t.ok(await lab.waitFor(() => A.s.devices.stats.notFriend > hellos, 2000), 'a non-friend\'s hello is refused');
    // Bob's certificate, sent by Carol's node: it names another node.
    const wrong = A.s.devices.stats.wrongNode;
    const bobCert = issueDeviceCert(users.bob, 'desktop', B.node.address, lab.now()).bytes;
    C.node.router.send(A.node.address, Mode.Exact, Payload.SocialControl, encodeHello({ flags: FLAG_FRIEND, ownIp: SELF, yourIp: SELF, cert: bobCert }), conn);
    t.ok(await lab.waitFor(() => A.s.devices.stats.wrongNode > wrong, 2000), 'a certificate naming another node is refused');
    // A certificate for Carol's node that claims to be Bob's, signed by Mallory's key.
    const bad = A.s.devices.stats.badCert;
    const forged = issueDeviceCert(users.mallory, 'desktop', C.node.address, lab.now()).bytes.slice();
    forged.set(users.bob.publicKey, 1);
    C.node.router.send(A.node.address, Mode.Exact, Payload.SocialControl, encodeHello({ flags: FLAG_FRIEND, ownIp: SELF, yourIp: SELF, cert: forged }), conn);
    t.ok(await lab.waitFor(() => A.s.devices.stats.badCert > bad, 2000), 'a forged certificate is refused');
    t.notOk(A.s.devices.get(C.node.address), 'Carol\'s node never became a friend device at Alice');
  });

  await t.test('after Alice removes Bob, traffic stops both ways', async (t) => {
    lists['laptop'] = [];
    A.s.devices.tick();
    t.notOk(A.s.devices.get(B.node.address), 'Alice forgot Bob\'s devices');
    t.ok(await lab.waitFor(() => !B.s.devices.mutual(B.s.devices.get(A.node.address)!), 3000), 'Bob was told: Alice is no longer mutual at Bob');
    B.tap.clear();
    const dropped = A.s.stats.dropUnknownIp + A.s.stats.dropNotFriend;
    A.tap.inject(buildUdpFrame({ srcMac: HOST_MAC, dstMac: A.s.gatewayMac, srcIp: SELF, dstIp: bobAtAlice.localIp, srcPort: 4000, dstPort: 5000, payload: new Uint8Array(8) }));
    await lab.sleep(300);
    t.equal(B.tap.written.length, 0, 'nothing reaches Bob');
    t.ok(A.s.stats.dropUnknownIp + A.s.stats.dropNotFriend > dropped, 'dropped and counted at Alice');
    t.equal(A.book.ipOf(B.node.address.key), bobAtAlice.localIp, 'Bob keeps his local IP at Alice');
  });
});
