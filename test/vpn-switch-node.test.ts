// Switch mode's data path over an in-memory overlay (no root): three members, each a switch
// port with hosts behind it. Floods reach every other member once and never come back
// (split horizon); replies are learnt and go as unicast; a second ARP request is answered
// locally; entries age out; MAC moves are held; floods are limited per source; super-packets
// cross whole; frames from a node outside the switch are refused.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Payload } from '../src/routing/ah-wire.js';
import type { Clock } from '../src/util/clock.js';
import { ARP_REPLY, buildArp, buildArpRequest, buildUdpFrame, decodeArp, parseIp, parseMac } from '../src/vpn/frames.js';
import { FramePath, newFramePathStats } from '../src/vpn/frame-path.js';
import { OnDemand } from '../src/vpn/on-demand.js';
import { SwitchNode } from '../src/vpn/switch/switch-node.js';
import { switchStateView } from '../src/vpn/switch/state.js';
import { startVpnRing } from './helpers/dht.js';
import { FakeTap } from './helpers/fake-tap.js';
import { buildSuper, segmentProblems } from './helpers/tcp-super.js';

const NS = 'swns';
const ALL_LINKED = { enabled: false, threshold: 128, idleTimeout: 240 };
const H1 = parseMac('02:00:00:00:01:01'), H2 = parseMac('02:00:00:00:02:01'), H3 = parseMac('02:00:00:00:03:01');
const IP1 = parseIp('10.0.3.11'), IP2 = parseIp('10.0.3.21');
const udp = (src: Uint8Array, dst: Uint8Array, dstIp = '10.0.3.21') =>
  buildUdpFrame({ srcMac: src, dstMac: dst, srcIp: IP1, dstIp: parseIp(dstIp), srcPort: 4000, dstPort: 5000, payload: new Uint8Array(64) });

t.test('switch mode over an in-memory overlay', async (t) => {
  const ring = await startVpnRing(t, 8, 'swring');
  const { lab, nodes, dhts, vpns } = ring;
  // One virtual clock for the overlay; the switches' `now` can be moved forward to age entries.
  const skew = { ms: 0 };
  const clock: Clock = { now: () => lab.now() + skew.ms, setTimeout: (f, ms) => lab.clock.setTimeout(f, ms), setInterval: (f, ms) => lab.clock.setInterval(f, ms) };
  const member = async (i: number, tap: FakeTap, flood = { perSecond: 200, burst: 400 }) => {
    const n = nodes[i]!;
    const components = { address: n.address, table: n.table, router: n.router, rpc: n.rpc, link: n.link, connector: n.connector, clock, log: n.log, listeners: n.listeners };
    const s = new SwitchNode({ node: components, dht: dhts[i]!.dht, registrations: dhts[i]!.registrations, device: tap, namespace: NS, onDemand: ALL_LINKED, flood });
    await s.start();
    vpns.push(s);
    return s;
  };
  const [t1, t2, t3] = [new FakeTap(0xa1), new FakeTap(0xa2), new FakeTap(0xa3, true)];
  const S1 = await member(1, t1, { perSecond: 5, burst: 10 });
  const S2 = await member(3, t2);
  const S3 = await member(5, t3);
  for (const s of [S1, S2, S3]) await s.syncMembers();
  t.ok(await lab.waitFor(() => [S1, S2, S3].every((s) => s.members.length === 2), 5000), 'each sees the two others');
  const clear = () => { for (const x of [t1, t2, t3]) x.clear(); };
  const quiet = (ms = 300) => lab.sleep(ms);

  await t.test('a broadcast reaches each other member once, and never comes back', async (t) => {
    t1.inject(buildArpRequest(H1, IP1, IP2));
    t.ok(await lab.waitFor(() => t2.written.length === 1 && t3.written.length === 1, 10_000), 'S2 and S3 got the ARP request');
    await quiet();
    t.equal(t2.written.length + t3.written.length, 2, 'once each');
    t.equal(t1.written.length, 0, 'nothing back to the sender');
    t.equal(S1.stats.flooded, 1);
    t.equal(S2.macs.lookup(H1, 0)?.toString(), nodes[1]!.address.toString(), 'S2 learnt H1 behind S1');
    clear();
  });

  await t.test('the reply goes as unicast to the member its destination was learnt behind', async (t) => {
    t2.inject(buildArp(ARP_REPLY, H1, H2, IP2, H1, IP1));
    t.ok(await lab.waitFor(() => t1.written.length === 1, 10_000), 'S1 got the reply');
    await quiet();
    t.equal(t3.written.length, 0, 'S3 got nothing');
    t.equal(S2.stats.unicast, 1);
    t.equal(decodeArp(t1.written[0]!).senderIp, IP2, 'unchanged');
    clear();
  });

  await t.test('the next ARP request for that IP is answered locally, not flooded', async (t) => {
    const flooded = S1.stats.flooded;
    t1.inject(buildArpRequest(H1, IP1, IP2));
    t.ok(await lab.waitFor(() => t1.written.length === 1, 5000), 'an answer on the TAP');
    const a = decodeArp(t1.written[0]!);
    t.equal(a.op, ARP_REPLY);
    t.same([...a.senderMac], [...H2], 'with the MAC learnt behind S2');
    t.equal(S1.arp.stats.localAnswers, 1, 'counted');
    await quiet();
    t.equal(S1.stats.flooded, flooded, 'not flooded');
    t.equal(t2.written.length + t3.written.length, 0, 'no member saw it');
    const st = switchStateView(S1).getState();
    t.equal(st.local_state.mode, 'switch');
    const arp = st.local_state.arp as Array<{ ip: string; mac: string; port: string }>;
    t.same(arp.filter((e) => e.ip === '10.0.3.21').map((e) => [e.mac, e.port]), [['02:00:00:00:02:01', nodes[3]!.address.key]], 'get_state: the ARP entry');
    t.match(st.peers.find((p) => p.uid === nodes[3]!.address.key)?.macs, ['02:00:00:00:02:01'], 'get_state: H2 behind S2');
    clear();
  });

  await t.test('known unicast crosses unchanged to one member', async (t) => {
    const f = udp(H1, H2);
    t1.inject(f);
    t.ok(await lab.waitFor(() => t2.written.length === 1, 5000));
    t.same(t2.written[0], f, 'the same bytes');
    await quiet();
    t.equal(t3.written.length, 0);
    clear();
  });

  await t.test('a super-packet crosses whole and is cut for a device without offload', async (t) => {
    // buildSuper's frames go from 10.0.0.1 to 10.0.0.2 between its own MACs: learn them first.
    const s = buildSuper(false, randomBytes(20_000), 1296);
    const src = s.frame.slice(6, 12), dst = s.frame.slice(0, 6);
    t2.inject(udp(dst, src));
    t.ok(await lab.waitFor(() => S3.macs.lookup(dst, 0) !== undefined, 5000), 'S3 learnt the receiver behind S2');
    clear();
    t3.injectOffloaded(s.meta, s.frame);
    const n = Math.ceil(20_000 / 1296);
    t.ok(await lab.waitFor(() => t2.written.length >= n, 10_000), `S2 got ${t2.written.length} segments`);
    t.equal(S3.stats.txOffload, 1, 'one overlay message');
    t.same(segmentProblems(s, t2.written), [], 'checksums, lengths, sequence numbers');
    clear();
  });

  await t.test('floods are limited per source MAC', async (t) => {
    const before = S1.stats.dropFloodLimited;
    for (let i = 0; i < 30; i++) t1.inject(udp(parseMac('02:00:00:00:01:02'), parseMac('ff:ff:ff:ff:ff:ff'), '10.0.3.255'));
    t1.inject(udp(parseMac('02:00:00:00:01:03'), parseMac('ff:ff:ff:ff:ff:ff'), '10.0.3.255'));
    t.ok(await lab.waitFor(() => t2.written.length >= 11, 5000));
    await quiet(500);
    t.ok(t2.written.length <= 13, `S2 got the burst of 10 plus the other source (and at most a refill): ${t2.written.length}`);
    t.ok(S1.stats.dropFloodLimited - before >= 18, `limited: ${S1.stats.dropFloodLimited - before}`);
    clear();
  });

  await t.test('a MAC that moves between members moves at most once per hold time', async (t) => {
    t3.inject(udp(H2, H1));
    t.ok(await lab.waitFor(() => t1.written.length === 1, 5000), 'H2 now at S3: delivered');
    t.equal(S1.macs.lookup(H2, 0)?.toString(), nodes[5]!.address.toString(), 'H2 moved behind S3');
    t.equal(S1.macs.stats.moves, 1, 'one move');
    clear();
    t2.inject(udp(H2, H1));
    await quiet(500);
    t.equal(t1.written.length, 0, 'back at S2 within the hold time: refused');
    t.ok(S1.stats.dropMacConflict >= 1 && S1.macs.stats.movesHeld >= 1, 'counted as held');
    skew.ms += 1500;
    t2.inject(udp(H2, H1));
    t.ok(await lab.waitFor(() => t1.written.length === 1, 5000), 'after the hold time it moves back');
    t.equal(S1.macs.lookup(H2, 0)?.toString(), nodes[3]!.address.toString(), 'H2 behind S2 again');
    t.ok(S1.macs.stats.conflicts >= 3, `conflicts counted (${S1.macs.stats.conflicts})`);
    clear();
  });

  await t.test('entries age out', async (t) => {
    t.ok(S1.macs.lookup(H2, 0) !== undefined);
    skew.ms += 300_000;
    t.equal(S1.macs.lookup(H2, 0), undefined, 'aged out at 300 s');
    t.ok(await lab.waitFor(() => S1.macs.entries().length === 0 && S1.arp.entries().length === 0, 3000), 'and removed by the periodic sweep');
    const flooded = S1.stats.flooded;
    t1.inject(udp(H1, H2));
    t.ok(await lab.waitFor(() => t2.written.length === 1 && t3.written.length === 1, 5000), 'unknown again: flooded');
    t.equal(S1.stats.flooded, flooded + 1);
    clear();
  });

  await t.test('a node outside the switch cannot inject frames', async (t) => {
    // Node 6 is in the overlay (it could be any group member running no switch), not a switch member.
    const n = nodes[6]!;
    const od = new OnDemand(n, ALL_LINKED);
    t.teardown(() => od.close());
    const path = new FramePath(n, new FakeTap(0xee), od, newFramePathStats());
    path.send(nodes[1]!.address, udp(H3, H1), Payload.Ethernet);
    t.ok(await lab.waitFor(() => S1.stats.dropNotMember >= 1, 8000), `refused (${S1.stats.dropNotMember})`);
    t.equal(t1.written.length, 0, 'nothing reached the TAP');
    t.equal(S1.macs.lookup(H3, 0), undefined, 'nothing learnt');
  });

  await t.test('a member that leaves takes its MACs with it', async (t) => {
    t3.inject(udp(H3, H1));
    t.ok(await lab.waitFor(() => S1.macs.lookup(H3, 0) !== undefined, 5000), 'H3 learnt behind S3');
    await S3.leave();
    S3.stop();
    await S1.syncMembers();
    t.equal(S1.members.length, 1, 'S3 is gone');
    t.equal(S1.macs.lookup(H3, 0), undefined, 'and H3 with it');
  });
});
