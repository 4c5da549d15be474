// Whose an IP is comes only from a verified dhcp: claim. Member records (ipop:<ns>:members)
// are signed by the node they name and can never change an owner: forged records, written by
// a node outside the VPN or by another member, change nothing. A member that leaves cleanly
// drops out of the others' lists at their next refresh; a crashed one within the record TTL.
import t from 'tap';
import { encodeAh, Mode, Payload } from '../src/routing/ah-wire.js';
import { replicaPoints } from '../src/dht/placement.js';
import { buildUdpFrame, parseIp } from '../src/vpn/frames.js';
import { peerStates } from '../src/vpn/group/state.js';
import { IpopNode } from '../src/vpn/group/ipop-node.js';
import { claimAddress, MEMBERS_TTL, memberRecord, membersKey } from '../src/vpn/mapping.js';
import { startVpnRing } from './helpers/dht.js';
import { FakeTap } from './helpers/fake-tap.js';

const NS = 'memns';
const ONDEMAND = { enabled: true, threshold: 500, idleTimeout: 30 };
const enc = (s: string) => new TextEncoder().encode(s);
const frame = (srcMac: Uint8Array, src: string, dst: string) =>
  buildUdpFrame({ srcMac, dstMac: new Uint8Array(6).fill(0xfe), srcIp: parseIp(src), dstIp: parseIp(dst), srcPort: 4000, dstPort: 5000, payload: new Uint8Array(100) });

type Ring = Awaited<ReturnType<typeof startVpnRing>>;

/** Node i of the ring claims ip and starts a VPN member on tap. */
async function startMember(r: Ring, i: number, ip: string, tap: FakeTap, multicast: boolean): Promise<IpopNode> {
  const d = r.dhts[i]!;
  await claimAddress(d.dht, d.registrations, NS, parseIp(ip), r.nodes[i]!.address, 600);
  const v = new IpopNode({ node: r.nodes[i]!, dht: d.dht, registrations: d.registrations, device: tap, namespace: NS, ip: parseIp(ip), prefix: 24, onDemand: ONDEMAND, multicast });
  await v.start();
  r.vpns.push(v);
  return v;
}

t.test('member records cannot change whose an IP is', async (t) => {
  const ring = await startVpnRing(t, 10, 'memring');
  const { lab, nodes, dhts } = ring;
  const member = (i: number, ip: string, tap: FakeTap) => startMember(ring, i, ip, tap, true);
  const [ta, tb, tc] = [new FakeTap(1), new FakeTap(2), new FakeTap(3)];
  const A = await member(1, '10.7.0.10', ta);
  const B = await member(2, '10.7.0.11', tb);
  await member(3, '10.7.0.12', tc);
  const [a, b, c, x] = [nodes[1]!, nodes[2]!, nodes[3]!, nodes[4]!];
  const key = membersKey(NS);

  await A.syncMembers();
  t.same(A.members.map((m) => m.address.key).sort(), [b.address.key, c.address.key].sort(), 'A sees B and C');

  // The attacks: every kind of record that could claim B's IP for someone else, or take B out.
  await dhts[4]!.dht.put(key, enc(`${x.address.key} 10.7.0.11`), 600); // outsider, signed by itself
  await dhts[4]!.dht.put(key, enc(`${c.address.key} 10.7.0.11`), 600); // outsider naming another node
  await dhts[4]!.dht.put(key, memberRecord({ address: b.address, ip: parseIp('10.7.0.11'), incarnation: 9e12, up: false }), 600); // a forged "B left"
  await dhts[3]!.dht.put(key, memberRecord({ address: c.address, ip: parseIp('10.7.0.11'), incarnation: 9e12, up: true }), 600); // another member
  // An unsigned record written straight to the replicas, past the client's signing.
  for (const p of replicaPoints(key)) {
    await x.rpc.call({ address: p, mode: Mode.Greedy }, 'dht.Put', [p.bytes, enc(`${x.address.key} 10.7.0.11`), 600, false, key], { timeoutMs: 5000 }).catch(() => {});
  }

  await t.test('after two refreshes A still has B for .11, and traffic goes to B', async (t) => {
    for (let i = 0; i < 2; i++) await A.syncMembers();
    t.equal(A.resolver.get(parseIp('10.7.0.11'))?.key, b.address.key, 'the resolver has B');
    const peers = peerStates(A);
    t.same(peers.filter((p) => p.ip4 === '10.7.0.11').map((p) => p.uid), [b.address.key], 'get_state lists only B for .11');
    t.notOk(peers.some((p) => p.uid === x.address.key), 'the outsider is not listed');
    t.same(peers.filter((p) => p.uid === c.address.key).map((p) => p.ip4), ['10.7.0.12'], 'C only with its own IP');
    t.ok(A.memberList.stats.notOwner >= 1, `records naming a non-owner refused (${A.memberList.stats.notOwner})`);
    tb.clear();
    tc.clear();
    for (let i = 0; i < 20; i++) ta.inject(frame(ta.mac, '10.7.0.10', '10.7.0.11'));
    t.ok(await lab.waitFor(() => tb.written.length === 20, 10_000), `B got all 20 frames (${tb.written.length})`);
    t.equal(tc.written.length, 0, 'C got none');
  });

  await t.test('a broadcast reaches verified members only, once each', async (t) => {
    tb.clear();
    tc.clear();
    ta.inject(frame(ta.mac, '10.7.0.10', '10.7.0.255'));
    t.ok(await lab.waitFor(() => tb.written.length === 1 && tc.written.length === 1, 10_000), 'B and C got it');
    await lab.sleep(300);
    t.equal(tb.written.length + tc.written.length, 2, 'once each');
  });

  await t.test('the record TTL is at most 120 s', async (t) => {
    const regs = dhts[2]!.registrations.list().filter((r) => Buffer.from(r.key).equals(Buffer.from(key)));
    t.equal(regs.length, 1, 'B keeps one member record alive');
    t.ok(regs[0]!.ttl <= 120 && MEMBERS_TTL <= 120, `ttl ${regs[0]!.ttl} s`);
  });

  await t.test('a member that leaves cleanly drops out at the next refresh; a restart brings it back', async (t) => {
    await B.leave();
    B.stop();
    await A.syncMembers();
    t.notOk(A.members.some((m) => m.address.equals(b.address)), 'B is gone from A\'s members');
    t.notOk(peerStates(A).some((p) => p.uid === b.address.key), 'and from get_state');
    // Restarted on the same node: a new incarnation outranks the old "down" record.
    await lab.sleep(5);
    const B2 = await member(2, '10.7.0.11', new FakeTap(4));
    await B2.syncMembers();
    // No refresh by hand: A re-reads the records as soon as it resolves an IP to a departed member.
    A.resolver.invalidate(parseIp('10.7.0.11'));
    t.ok(await lab.waitFor(() => A.members.some((m) => m.address.equals(b.address)), 5000), 'B is back');
    t.ok(peerStates(A).some((p) => p.uid === b.address.key), 'and in get_state');
    t.ok(B2.members.some((m) => m.address.equals(a.address)), 'and sees A');
  });
});

t.test('a frame whose routed source is forged is refused: only the last hop is authenticated', async (t) => {
  const ring = await startVpnRing(t, 8, 'srcring');
  const { lab, nodes } = ring;
  const [ta, tb] = [new FakeTap(1), new FakeTap(2)];
  const start = (i: number, ip: string, tap: FakeTap) => startMember(ring, i, ip, tap, false);
  const A = await start(1, '10.7.0.10', ta);
  const B = await start(2, '10.7.0.11', tb);
  const [a, b, x] = [nodes[1]!, nodes[2]!, nodes[5]!];
  // A genuine exchange first: A and B end up linked, and B has A as the owner of .10.
  ta.inject(frame(ta.mac, '10.7.0.10', '10.7.0.11'));
  t.ok(await lab.waitFor(() => tb.written.length === 1, 10_000), 'a genuine frame from A arrives');
  t.ok(a.table.get(b.address) && b.table.get(a.address), 'over a connection between A and B');
  tb.clear();
  const forged = () => encodeAh({ mode: Mode.Exact, flags: 0, hops: 0, ttl: 16, src: a.address, dst: b.address, ptype: Payload.Ip }, frame(ta.mac, '10.7.0.10', '10.7.0.11'));
  const before = B.stats.dropNotDirect;
  // X, outside the VPN, sends "from A" both over a connection to B and over its other connections.
  if (!x.table.get(b.address)) await x.connector.connectTo(b.address, 'greedy', 'structured.ondemand').catch(() => []);
  const conns = [...x.table.all()];
  t.ok(conns.some((c) => c.address.equals(b.address)), 'X is linked to B');
  for (const c of conns) c.edge.send(forged());
  t.ok(await lab.waitFor(() => B.stats.dropNotDirect > before, 5000), `refused (${B.stats.dropNotDirect - before})`);
  await lab.sleep(500);
  t.equal(tb.written.length, 0, 'nothing reached B\'s TAP');
  t.equal(A.stats.txFrames, 1, 'A sent one frame only');
});
