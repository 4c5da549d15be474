// The VPN's logic over an in-memory overlay, with fake TAP devices (no root needed): address
// claims, ARP, forwarding with source checks, queueing while a lookup runs, on-demand
// connections and their trimming, all-members mode, get_state.
import t from 'tap';
import { Mode, Payload } from '../src/routing/ah-wire.js';
import { buildArpRequest, buildUdpFrame, decodeArp, ipv4Src, parseIp, ARP_REPLY } from '../src/vpn/frames.js';
import { GetStateServer } from '../src/vpn/get-state.js';
import { routerStateView } from '../src/vpn/group/state.js';
import { IpopNode } from '../src/vpn/group/ipop-node.js';
import { claimAddress } from '../src/vpn/mapping.js';
import { DEFAULT_VPN_MTU, VPN_OVERHEAD } from '../src/vpn/mtu.js';
import { queryState } from '../src/cli/groupvpn-status.js';
import { startVpnRing } from './helpers/dht.js';
import { FakeTap } from './helpers/fake-tap.js';

const ONDEMAND = { enabled: true, threshold: 500, idleTimeout: 2 };
const frame = (srcMac: Uint8Array, src: string, dst: string, payload = new Uint8Array(200)) =>
  buildUdpFrame({ srcMac, dstMac: new Uint8Array(6).fill(0xfe), srcIp: parseIp(src), dstIp: parseIp(dst), srcPort: 4000, dstPort: 5000, payload });

t.test('VPN over an in-memory overlay', async (t) => {
  const N = 24;
  const { lab, nodes, dhts, vpns } = await startVpnRing(t, N, 'vpnns');

  // Two members that have no direct connection, so the first packets are routed over others.
  // And a third linked to neither, for the all-members mode.
  const linked = (i: number, j: number) => !!nodes[i]!.table.get(nodes[j]!.address) || !!nodes[j]!.table.get(nodes[i]!.address);
  let ai = -1, bi = -1, ci = -1;
  for (let i = 1; i < N && ci < 0; i++) for (let j = i + 1; j < N && ci < 0; j++) for (let k = 1; k < N && ci < 0; k++) {
    if (k !== i && k !== j && !linked(i, j) && !linked(i, k) && !linked(j, k)) { ai = i; bi = j; ci = k; }
  }
  if (!t.ok(ci > 0, 'found three nodes without direct connections among them')) return;
  const taps = [new FakeTap(), new FakeTap(), new FakeTap()];
  const member = async (i: number, ip: string, tap: FakeTap, onDemand = ONDEMAND) => {
    const d = dhts[i]!;
    await claimAddress(d.dht, d.registrations, 'ipopns', parseIp(ip), nodes[i]!.address, 600);
    const v = new IpopNode({ node: nodes[i]!, dht: d.dht, registrations: d.registrations, device: tap, namespace: 'ipopns', ip: parseIp(ip), prefix: 24, onDemand, multicast: false });
    await v.start();
    vpns.push(v);
    return v;
  };
  const A = await member(ai, '10.9.0.10', taps[0]!);
  const B = await member(bi, '10.9.0.11', taps[1]!);

  await t.test('a second node claiming a live IP is refused, naming the owner', async (t) => {
    const other = [1, 2, 3, 4].find((x) => x !== ai && x !== bi && x !== ci)!;
    await t.rejects(claimAddress(dhts[other]!.dht, dhts[other]!.registrations, 'ipopns', parseIp('10.9.0.11'), nodes[other]!.address, 600),
      new RegExp(`already claimed by ${nodes[bi]!.address.key}`));
  });

  await t.test('ARP for a member is answered with the gateway MAC once resolved', async (t) => {
    taps[0]!.inject(buildArpRequest(taps[0]!.mac, parseIp('10.9.0.10'), parseIp('10.9.0.11')));
    t.ok(await lab.waitFor(() => taps[0]!.written.length > 0, 10_000), 'a reply came');
    const r = decodeArp(taps[0]!.written.shift()!);
    t.equal(r.op, ARP_REPLY);
    t.equal(r.senderIp, parseIp('10.9.0.11'));
    t.same([...r.senderMac], [...A.gatewayMac]);
    taps[0]!.inject(buildArpRequest(taps[0]!.mac, parseIp('10.9.0.10'), parseIp('10.9.0.99')));
    await lab.sleep(1500);
    t.equal(taps[0]!.written.length, 0, 'no reply for an IP nobody owns');
  });

  await t.test('frames travel both ways with rewritten MACs', async (t) => {
    const f = frame(taps[0]!.mac, '10.9.0.10', '10.9.0.11');
    taps[0]!.inject(f);
    t.ok(await lab.waitFor(() => taps[1]!.written.length > 0, 10_000), 'B got the frame');
    const got = taps[1]!.written.shift()!;
    t.same([...got.subarray(0, 6)], [...taps[1]!.mac], 'destination MAC is B\'s TAP');
    t.same([...got.subarray(6, 12)], [...B.gatewayMac], 'source MAC is B\'s gateway');
    t.same(Buffer.from(got.subarray(12)), Buffer.from(f.subarray(12)), 'the IP packet is unchanged');
    taps[1]!.inject(frame(taps[1]!.mac, '10.9.0.11', '10.9.0.10'));
    t.ok(await lab.waitFor(() => taps[0]!.written.length > 0, 10_000), 'A got the reply');
    t.equal(ipv4Src(taps[0]!.written.shift()!), parseIp('10.9.0.11'));
  });

  await t.test('a packet whose source IP is not the sender\'s is dropped', async (t) => {
    const spoofer = nodes[[1, 2, 3, 4].find((x) => x !== ai && x !== bi && x !== ci)!]!;
    // Over a connection of its own to B, so that the frame is not already refused for being routed.
    if (!spoofer.table.get(nodes[bi]!.address)) await spoofer.connector.connectTo(nodes[bi]!.address, 'greedy', 'structured.ondemand').catch(() => []);
    t.ok(spoofer.table.get(nodes[bi]!.address), 'the spoofer is linked to B');
    const before = B.stats.dropSpoofed;
    spoofer.router.send(nodes[bi]!.address, Mode.Exact, Payload.Ip, frame(taps[0]!.mac, '10.9.0.10', '10.9.0.11'));
    t.ok(await lab.waitFor(() => B.stats.dropSpoofed > before, 5000), 'counted as spoofed');
    t.equal(taps[1]!.written.length, 0, 'nothing written to B\'s TAP');
    const own = A.stats.dropNotOurSource;
    taps[0]!.inject(frame(taps[0]!.mac, '10.9.0.77', '10.9.0.11'));
    t.equal(A.stats.dropNotOurSource, own + 1, 'the sender refuses a source IP that is not its own');
  });

  await t.test('traffic opens an on-demand connection, idleness trims it', async (t) => {
    for (let i = 0; i < 10; i++) taps[0]!.inject(frame(taps[0]!.mac, '10.9.0.10', '10.9.0.11'));
    t.ok(await lab.waitFor(() => nodes[ai]!.table.get(nodes[bi]!.address)?.type === 'structured.ondemand', 10_000), 'direct on-demand connection');
    t.ok(await lab.waitFor(() => !nodes[ai]!.table.get(nodes[bi]!.address), 10_000), 'closed after the idle timeout (2 s)');
    t.ok(A.onDemand.stats.trimmed >= 1 || B.onDemand.stats.trimmed >= 1);
  });

  await t.test('with on-demand off a member connects to every member right away', async (t) => {
    await member(ci, '10.9.0.12', taps[2]!, { ...ONDEMAND, enabled: false });
    t.ok(await lab.waitFor(() => !!nodes[ci]!.table.get(nodes[ai]!.address) && !!nodes[ci]!.table.get(nodes[bi]!.address), 15_000), 'connected to A and B');
  });

  await t.test('get_state lists the local node and peers, online once directly connected', async (t) => {
    const gs = new GetStateServer(() => routerStateView(A), 0, () => ({ state: 'ready' }));
    await gs.start();
    t.teardown(() => gs.close());
    await A.syncMembers();
    const s = await queryState(gs.boundPort, 'get_state', 3000);
    const local = s!.local_state as Record<string, string>;
    t.equal(local.uid, nodes[ai]!.address.key);
    t.equal(local.ip4, '10.9.0.10');
    const peers = s!.peers as Array<Record<string, string>>;
    t.same(peers.map((p) => p.ip4), ['10.9.0.11', '10.9.0.12']);
    t.equal(peers.find((p) => p.ip4 === '10.9.0.12')!.status, 'online', 'C connected to A');
    const st = await queryState(gs.boundPort, 'status', 3000);
    t.equal(st!.state, 'ready');
    t.ok((st!.peers as Array<{ rttMs?: number }>).every((p) => typeof p.rttMs === 'number'), 'status has an RTT per peer');
  });
});

t.test('the default MTU leaves room for every overlay header on a 1500-byte path', async (t) => {
  t.ok(DEFAULT_VPN_MTU + VPN_OVERHEAD <= 1500, `${DEFAULT_VPN_MTU} + ${VPN_OVERHEAD} <= 1500`);
  t.ok(DEFAULT_VPN_MTU >= 1280, 'and IPv6\'s minimum still fits');
});
