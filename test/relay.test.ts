// Relay (tunnel) edges on an in-memory overlay. "Hidden" nodes can reach only three public
// nodes (as behind a symmetric NAT or a firewall); every other pair involving them is
// partitioned. The ring must still close, every pair must reach every other by RPC, the
// hidden nodes' ring links must be tunnel edges through the public nodes, a lifted block
// must turn tunnel edges into direct ones, and a forwarder's per-source cap must hold.
import t from 'tap';
import type { Connection } from '../src/connection/connection.js';
import { decodeRelay, encodeRelay, RelayType } from '../src/connection/relay-wire.js';
import { Node } from '../src/node/node.js';
import { Mode } from '../src/routing/ah-wire.js';
import type { MemoryEdgeListener } from '../src/transport/memory.js';
import { TransportAddress } from '../src/transport/ta.js';
import { WireError } from '../src/wire/value.js';
import { consistency, FAST, stopAll } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

const PUBLIC = 10;
const HIDDEN = 4;
const TUNNEL = { upgradeMs: 1000 };

interface Member { node: Node; l: MemoryEdgeListener; hidden: boolean }

async function build(lab: VirtualLab, tunnel: object = TUNNEL): Promise<Member[]> {
  const net = lab.net;
  const members: Member[] = [];
  let boot: TransportAddress[] = [];
  for (let i = 0; i < PUBLIC + HIDDEN; i++) {
    const l = lab.listener();
    const hidden = i >= PUBLIC;
    if (hidden) {
      // Reachable only through the first three public nodes.
      for (const m of members) if (members.indexOf(m) >= 3) net.block(l.ta, m.l.ta);
    }
    for (const m of members) if (m.hidden && i >= 3) net.block(l.ta, m.l.ta);
    const node = new Node({ ...FAST, ...lab.env(), namespace: 'relayns', listeners: [l], remoteTAs: boot, tunnel });
    await node.start();
    if (i === 0) boot = l.localTAs();
    members.push({ node, l, hidden });
  }
  return members;
}

const tunnelConns = (n: Node): Connection[] => [...n.table.all()].filter((c) => c.edge.kind === 'tunnel');

t.test('TA form and relay frame decoding', async (t) => {
  const target = 'A'.repeat(32), f1 = 'B'.repeat(32), f2 = 'C'.repeat(32);
  const ta = TransportAddress.parse(`brunet.tunnel://${target}/${f1}+${f2}`);
  t.equal(ta.kind, 'tunnel');
  t.same(ta.forwarders, [f1, f2]);
  t.equal(TransportAddress.parse(ta.key).key, ta.key, 'round trip');
  t.throws(() => TransportAddress.parse(`brunet.tunnel://${target}/`), /malformed tunnel/);
  t.throws(() => TransportAddress.parse(`brunet.tunnel://${target}/${Array(9).fill(f1).join('+')}`), /at most 8/);
  t.throws(() => decodeRelay(new Uint8Array([3, 1, 0])), WireError);
  t.throws(() => decodeRelay(new Uint8Array(60).fill(0).map((_, i) => (i === 0 ? 3 : i === 1 ? 9 : 0))), /version/);
});

t.test('hidden nodes join, route and are reached over relay edges', async (t) => {
  const lab = new VirtualLab({ seed: 21 });
  const net = lab.net;
  const nodes: Node[] = [];
  t.teardown(async () => { await stopAll(nodes); await lab.stop(); });
  const members = await build(lab);
  nodes.push(...members.map((m) => m.node));
  const started = lab.now();
  const ok = await lab.waitFor(() => consistency(nodes) === 1, 40_000);
  t.ok(ok, `ring consistency 1 within 40 s (got ${consistency(nodes)} after ${lab.now() - started} ms)`);

  const hidden = members.filter((m) => m.hidden).map((m) => m.node);
  const relayed = hidden.reduce((s, n) => s + tunnelConns(n).length, 0);
  t.ok(relayed > 0, `hidden nodes hold tunnel edges (${relayed})`);
  const fwdKeys = new Set(members.slice(0, 3).map((m) => m.node.address.key));
  for (const n of hidden) {
    for (const c of n.table.all()) {
      if (c.edge.kind !== 'tunnel') t.ok(fwdKeys.has(c.address.key), `a hidden node's direct connection goes to a reachable public node`);
    }
  }
  const relayedFrames = members.slice(0, 3).reduce((s, m) => s + (m.node.tunnel?.stats.relayed ?? 0), 0);
  t.ok(relayedFrames > 0, `the reachable public nodes forwarded relay frames (${relayedFrames})`);

  // Every ordered pair answers an Exact RPC.
  const fails: string[] = [];
  await Promise.all(nodes.flatMap((a, i) => nodes.map(async (b, j) => {
    if (i === j) return;
    try {
      const r = await a.rpc.call({ address: b.address, mode: Mode.Exact }, 'sys:link.Ping', [`${i}-${j}`], { timeoutMs: 8000 });
      if (r !== `${i}-${j}`) fails.push(`${i}->${j} echoed ${String(r)}`);
    } catch (e) { fails.push(`${i}->${j}: ${(e as Error).message}`); }
  })));
  t.same(fails, [], `all ${nodes.length * (nodes.length - 1)} ordered pairs reachable`);

  const info = await nodes[0]!.rpc.call({ address: hidden[0]!.address, mode: Mode.Exact }, 'Information.Info', [], { timeoutMs: 5000 }) as Record<string, number>;
  t.equal(info.tunnel, hidden[0]!.tunnel!.edgeCount, 'Information.Info reports the tunnel edge count');
  const conns = await nodes[0]!.rpc.call({ address: hidden[0]!.address, mode: Mode.Exact }, 'ConnectionTable.GetConnections', [], { timeoutMs: 5000 }) as Array<Record<string, unknown>>;
  const relayedConns = conns.filter((c) => c.kind === 'tunnel');
  t.equal(relayedConns.length, tunnelConns(hidden[0]!).length, 'GetConnections lists each relayed connection');
  t.ok(relayedConns.every((c) => Array.isArray(c.via) && (c.via as string[]).every((k) => fwdKeys.has(k))), 'with forwarders among the reachable public nodes');

  // Lift every block of one hidden node: its tunnel connections move to direct edges.
  const h = members.find((m) => m.hidden && tunnelConns(m.node).length > 0);
  t.ok(h, 'a hidden node with tunnel connections');
  if (!h) return;
  for (const m of members) net.unblock(h.l.ta, m.l.ta);
  const before = tunnelConns(h.node).map((c) => c.address.key);
  const upgraded = await lab.waitFor(() => before.every((k) => {
    const c = [...h.node.table.all()].find((x) => x.address.key === k);
    return !c || c.edge.kind === 'function';
  }), 15_000);
  t.ok(upgraded, `tunnel connections of the unblocked node became direct (${tunnelConns(h.node).length} tunnel left)`);
  t.equal(consistency(nodes), 1, 'ring still consistent after the upgrade');
});

t.test('a forwarder caps relay traffic per source', async (t) => {
  const lab = new VirtualLab({ seed: 22 });
  const mk = (cap: number) => new Node({ ...FAST, ...lab.env(), namespace: 'capns', listeners: [lab.listener()], tunnel: { maxRelayBytesPerSec: cap, upgradeMs: 0 } });
  const [a, f, b] = [mk(1e9), mk(4000), mk(1e9)];
  t.teardown(async () => { await stopAll([a, f, b]); await lab.stop(); });
  for (const n of [a, f, b]) await n.start();
  const ca = await a.link.connect(f.info(), 'structured.near');
  const cb = await b.link.connect(f.info(), 'structured.near');
  t.ok(ca && cb, 'a and b linked to the forwarder');
  const got: number[] = [];
  // Listened to beside b's tunnel listener, which gets these frames too (and may open an edge to a).
  const unlisten = b.link.events.on('relay', (p) => { got.push(decodeRelay(p).payload.length); });
  const payload = new Uint8Array(900);
  for (let i = 0; i < 20; i++) {
    ca!.edge.send(encodeRelay({ type: RelayType.Data, target: b.address, source: a.address, senderId: 7, receiverId: 0, payload }));
  }
  await lab.waitFor(() => f.tunnel!.stats.capDrops + f.tunnel!.stats.relayed >= 20, 5000);
  t.equal(f.tunnel!.stats.relayed, 4, 'a 4000 B/s bucket passes four 960-byte frames');
  t.equal(f.tunnel!.stats.capDrops, 16, 'the rest is dropped');
  await lab.waitFor(() => got.length >= 4, 2000);
  t.equal(got.length, 4, 'the target received the passed frames');

  // A frame whose source is the forwarder itself (no third node) is refused at the endpoint.
  unlisten();
  const refused0 = b.tunnel!.stats.refused;
  const fb = f.table.get(b.address)!;
  fb.edge.send(encodeRelay({ type: RelayType.Data, target: b.address, source: f.address, senderId: 9, receiverId: 0, payload }));
  t.ok(await lab.waitFor(() => b.tunnel!.stats.refused === refused0 + 1, 2000), 'refused at the endpoint');
  t.same(b.tunnel!.forwardersFor(f.address), [], 'no tunnel edge to the forwarder was created for it');
});
