// The VPN between two members that cannot reach each other or most of the overlay directly
// (as behind two symmetric NATs): each can reach only three public nodes. Their traffic must
// flow, the on-demand connection between them must be a relay edge, and get_state / status
// must say so and name the forwarders.
import t from 'tap';
import { Identity } from '../src/edge/identity.js';
import { DhtService } from '../src/dht/service.js';
import { TableStore } from '../src/dht/store.js';
import { Node } from '../src/node/node.js';
import type { SimEdgeListener } from '../src/transport/sim.js';
import { buildUdpFrame, ipv4Src, parseIp } from '../src/vpn/frames.js';
import { peerStates } from '../src/vpn/group/state.js';
import { IpopNode } from '../src/vpn/group/ipop-node.js';
import { FakeTap } from './helpers/fake-tap.js';
import { claimAddress } from '../src/vpn/mapping.js';
import { consistency, FAST, stopAll } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

const PUBLIC = 10;
const frame = (srcMac: Uint8Array, src: string, dst: string, payload = new Uint8Array(600)) =>
  buildUdpFrame({ srcMac, dstMac: new Uint8Array(6).fill(0xfe), srcIp: parseIp(src), dstIp: parseIp(dst), srcPort: 4000, dstPort: 5000, payload });

t.test('VPN between two hidden members runs over a relay edge', async (t) => {
  const lab = new VirtualLab({ seed: 7 });
  const net = lab.net;
  const nodes: Node[] = [], dhts: DhtService[] = [], ls: SimEdgeListener[] = [];
  for (let i = 0; i < PUBLIC + 2; i++) {
    const keys = lab.random();
    const id = Identity.fromPrivateKeys(keys.bytes(32), keys.bytes(32));
    const l = lab.listener();
    // The two last nodes reach only nodes 0..2; every other pair involving them is cut.
    if (i >= PUBLIC) for (const [j, o] of ls.entries()) if (j >= 3) net.block(l.ta, o.ta);
    const n = new Node({ ...FAST, ...lab.env(), namespace: 'vpnrelay', address: id.address, listeners: [l], remoteTAs: nodes[0] ? ls[0]!.localTAs() : [], tunnel: { upgradeMs: 0 } });
    await n.start();
    const store = TableStore.memory({ clock: lab.clock });
    await store.open();
    nodes.push(n); ls.push(l);
    dhts.push(new DhtService(n, store, {}, id));
  }
  const vpns: IpopNode[] = [];
  t.teardown(async () => { for (const v of vpns) v.stop(); await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 40_000), 'ring formed');

  const [ai, bi] = [PUBLIC, PUBLIC + 1];
  const taps = [new FakeTap(1), new FakeTap(2)];
  const onDemand = { enabled: true, threshold: 100, idleTimeout: 60 };
  for (const [k, i] of [ai, bi].entries()) {
    const ip = `10.8.0.${10 + k}`;
    await claimAddress(dhts[i]!.dht, dhts[i]!.registrations, 'relayvpn', parseIp(ip), nodes[i]!.address, 600);
    const v = new IpopNode({ node: nodes[i]!, dht: dhts[i]!.dht, registrations: dhts[i]!.registrations, device: taps[k]!, namespace: 'relayvpn', ip: parseIp(ip), prefix: 24, onDemand, multicast: false });
    await v.start();
    vpns.push(v);
  }

  // Enough traffic to open the on-demand connection; frames are delivered in any case.
  for (let i = 0; i < 20; i++) taps[0]!.inject(frame(taps[0]!.mac, '10.8.0.10', '10.8.0.11'));
  t.ok(await lab.waitFor(() => taps[1]!.written.length >= 20, 15_000), `B received A's frames (${taps[1]!.written.length}/20)`);
  t.ok(await lab.waitFor(() => !!nodes[ai]!.table.get(nodes[bi]!.address), 15_000), 'A and B are connected');
  const conn = nodes[ai]!.table.get(nodes[bi]!.address);
  if (!conn) return;
  t.equal(conn.edge.kind, 'tunnel', 'over a relay edge (no direct path exists)');

  taps[0]!.clear();
  taps[1]!.inject(frame(taps[1]!.mac, '10.8.0.11', '10.8.0.10'));
  t.ok(await lab.waitFor(() => taps[0]!.written.length > 0, 5000), 'A received B\'s reply');
  t.equal(ipv4Src(taps[0]!.written[0]!), parseIp('10.8.0.11'));

  const peer = peerStates(vpns[0]!).find((p) => p.ip4 === '10.8.0.11');
  t.equal(peer?.path, 'relayed', 'get_state: B is relayed');
  const reachable = new Set(nodes.slice(0, 3).map((n) => n.address.key));
  t.ok((peer?.via?.length ?? 0) > 0 && peer!.via!.every((k) => reachable.has(k)), `through forwarders both can reach (${peer?.via?.map((k) => k.slice(12, 20)).join(',')})`);
});
