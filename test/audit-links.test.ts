// Security audit, links: a TA that a peer reports for node X (Status, ConnectTo replies, relay
// forwarder lists) must never give us a connection that we take for X unless the far end
// proved X's key. Nodes with secure edges, as the CLI builds them, in virtual time (VirtualLab).
import t from 'tap';
import { Address } from '../src/address/address.js';
import { encodeNodeInfo } from '../src/connection/node-info.js';
import { tunnelTA } from '../src/connection/tunnel.js';
import { encodeLink, decodeLink, LinkError } from '../src/connection/link-wire.js';
import { groupKey } from '../src/edge/handshake.js';
import { Identity } from '../src/edge/identity.js';
import { SecureEdgeListener } from '../src/edge/secure-listener.js';
import { Node } from '../src/node/node.js';
import type { EdgeListener } from '../src/transport/edge.js';
import type { MemoryEdgeListener } from '../src/transport/memory.js';
import type { TransportAddress } from '../src/transport/ta.js';
import { seededRandom } from '../src/util/random.js';
import { FAST, stopAll } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

const NS = 'audit-ns';
const KEY = groupKey('audit group secret', NS);

interface Secured { node: Node; raw: MemoryEdgeListener }

/** A node as the CLI builds it: its address from its key, every edge (relay ones too) secured. */
async function secureNode(lab: VirtualLab, boot: TransportAddress[], relay = true): Promise<Secured> {
  const identity = Identity.generate();
  const wrap = (l: EdgeListener) => new SecureEdgeListener(l, { identity, groupKey: KEY, namespace: NS, clock: lab.clock, random: lab.random() });
  const raw = lab.listener();
  const node = new Node({ ...FAST, ...lab.env(), namespace: NS, address: identity.address, listeners: [wrap(raw)], tunnel: relay && { upgradeMs: 0 }, wrapTunnel: wrap, remoteTAs: boot });
  await node.start();
  return { node, raw };
}

t.test('a wrong TA for X (Status, ConnectTo) never yields a connection taken for X', async (t) => {
  const lab = new VirtualLab({ seed: 81 });
  const net = lab.net;
  const all: Node[] = [];
  t.teardown(async () => { await stopAll(all); await lab.stop(); });
  const m = await secureNode(lab, [], false);
  const a = await secureNode(lab, [m.raw.ta], false);
  const x = await secureNode(lab, [m.raw.ta], false);
  all.push(a.node, x.node, m.node);
  // a cannot reach x at all (no relays either): whatever a files under x came from m.
  net.block(a.raw.ta, x.raw.ta);
  t.ok(await lab.waitFor(() => !!a.node.table.get(m.node.address) && !!x.node.table.get(m.node.address), 10_000), 'a and x linked to m');
  t.notOk(a.node.table.get(x.node.address), 'a holds no link to x');
  /** The invariant: every connection is filed under the address its far end proved. */
  const honest = () => [...a.node.table.all()].every((c) => c.edge.peer?.address.equals(c.address) === true);

  // A peer reports x at m's TA: the handshake proves m, not x.
  const got = await a.node.link.connect({ address: x.node.address, tas: [m.raw.ta] }, 'structured.near');
  t.equal(got, null, 'the impostor\'s TA gives no connection');
  t.notOk(a.node.table.get(x.node.address), 'nothing is filed under x');
  t.ok(honest(), 'every connection of a is filed under its proven address');

  // m even claims to be x in its link messages: its proven key still says m.
  const realInfo = m.node.info.bind(m.node);
  m.node.info = () => ({ ...realInfo(), address: x.node.address });
  const again = await a.node.link.connect({ address: x.node.address, tas: [m.raw.ta] }, 'structured.near');
  t.equal(again, null, 'a forged link reply is refused (proven key ≠ claimed address)');
  const refusedBefore = a.node.link.stats.refused;
  const am = a.node.table.get(m.node.address);
  if (am) a.node.link.close(am, 'test');
  await lab.waitFor(() => !m.node.table.get(a.node.address), 3000);
  const inbound = await m.node.link.connect({ address: a.node.address, tas: [a.raw.ta] }, 'structured.near');
  t.equal(inbound, null, 'm linking to a as x is refused');
  t.ok(a.node.link.stats.refused > refusedBefore, 'counted as refused by a');
  t.notOk(a.node.table.get(x.node.address), 'still nothing filed under x');
  t.ok(honest(), 'and every connection of a is still filed under its proven address');
  m.node.info = realInfo;
  t.ok(await lab.waitFor(() => !!a.node.table.get(m.node.address), 10_000), 'm, honest again, is linked again');

  // A ConnectTo answered by m with x's address at m's TA (its reply and its neighbour list).
  m.node.rpc.register('sys:ctm.ConnectTo', () => {
    const forged = encodeNodeInfo({ address: x.node.address, tas: [m.raw.ta] });
    return { local: forged, nb: [forged] };
  });
  const infos = await a.node.connector.connectTo(m.node.address, 'greedy', 'structured.shortcut');
  t.ok(infos.some((i) => i.address.equals(x.node.address)), 'a got the forged ConnectTo reply');
  t.notOk(a.node.table.get(x.node.address), 'and linked nobody as x');
  t.ok(honest(), 'every connection of a is filed under its proven address');

  // Learned through the near overlord (a Status naming x at m's TA): no connection as x either.
  a.node.near.learn(null, [{ address: x.node.address, tas: [m.raw.ta] }]);
  a.node.near.activate(lab.now());
  await lab.sleep(1500);
  t.notOk(a.node.table.get(x.node.address), 'the near overlord filed nothing under x');
  t.ok(honest(), 'every connection of a is filed under its proven address');
});

t.test('relay edges: identity is verified end to end; a forged tunnel TA leads nowhere', async (t) => {
  const lab = new VirtualLab({ seed: 82 });
  const net = lab.net;
  const all: Node[] = [];
  t.teardown(async () => { await stopAll(all); await lab.stop(); });
  const f = await secureNode(lab, []);
  const a = await secureNode(lab, [f.raw.ta]);
  const b = await secureNode(lab, [f.raw.ta]);
  const m = await secureNode(lab, [f.raw.ta]);
  all.push(f.node, a.node, b.node, m.node);
  // a cannot reach b or m directly: only through the forwarder f.
  for (const o of [b, m]) net.block(a.raw.ta, o.raw.ta);
  t.ok(await lab.waitFor(() => [a, b, m].every((s) => !!s.node.table.get(f.node.address)), 15_000), 'everyone linked to f');
  for (const o of [b, m]) { const c = a.node.table.get(o.node.address); if (c) a.node.link.close(c, 'test'); }

  // A neighbour list names node z with a relay TA whose tunnel leads to m instead (z is a key
  // of its own, not running, so nothing else can link a to z meanwhile).
  const z = Identity.generate().address;
  const forged = await a.node.link.connect({ address: z, tas: [tunnelTA(m.node.address, [f.node.address])] }, 'structured.near');
  t.equal(forged, null, 'the relayed handshake proves m, so no connection is taken for z');
  t.notOk(a.node.table.get(z), 'nothing filed under z');
  t.ok([...a.node.table.all()].every((c) => c.edge.peer?.address.equals(c.address) === true), 'every connection of a (relayed ones too) is filed under its proven address');

  // The genuine relay TA: the connection is relayed and b proved its key through f.
  const c = await a.node.link.connect({ address: b.node.address, tas: [tunnelTA(b.node.address, [f.node.address])] }, 'structured.near');
  t.ok(c, 'relayed link to b');
  t.equal(c?.edge.kind, 'tunnel', 'over a relay edge');
  t.ok(c?.edge.peer?.address.equals(b.node.address), 'whose secure layer proved b end to end');
  t.ok((f.node.tunnel?.stats.relayed ?? 0) > 0, 'f forwarded the frames');
});

t.test('an "already connected" reply only counts from the node we asked for', async (t) => {
  // No secure layer here (the reply's claimed address is all there is): the Linker itself must
  // not take the impostor's word that it is a node we are already linked to.
  const lab = new VirtualLab({ seed: 83 });
  t.teardown(() => lab.stop());
  const [a, y] = await lab.startRing(2);
  t.ok(await lab.waitFor(() => !!a!.table.get(y!.address), 5000), 'a linked to y');
  const imp = lab.listener();
  await imp.start();
  t.teardown(() => imp.stop());
  imp.onEdge = (e) => {
    e.onPacket = (p) => {
      const msg = decodeLink(p);
      if (msg.t === 'start') e.send(encodeLink({ t: 'reply', id: msg.id, code: LinkError.AlreadyConnected, local: { address: y!.address, tas: [] }, neighbors: [] }));
    };
  };
  const x = Address.random(seededRandom(5));
  const before = a!.table.get(y!.address)!.type;
  const got = await a!.link.connect({ address: x, tas: [imp.ta] }, 'structured.ondemand');
  t.equal(got, null, 'asking for x, the impostor cannot hand us y\'s connection');
  t.equal(a!.table.get(y!.address)!.type, before, 'nor change its type');
});
