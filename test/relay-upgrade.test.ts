// Who dials first when a relayed connection is moved to a direct edge (relay-upgrade.ts), in
// virtual time. The node with the larger address drives; when it made the relay connection
// itself, its Linker has just failed to dial the peer, so the peer dials first (a public node
// without UDP is reached by its NAT'd peers' TCP dials, never by its own). When the peer made
// it, the driver dials first, as before.
import t, { type Test } from 'tap';
import type { Connection } from '../src/connection/connection.js';
import { tunnelTA } from '../src/connection/tunnel.js';
import type { Node } from '../src/node/node.js';
import { consistency } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

/** A ring of 10 with relays, two nodes (big > small) that are not linked, and a node linked directly to both. */
async function setup(t: Test, seed: number) {
  const lab = new VirtualLab({ seed });
  t.teardown(() => lab.stop());
  const nodes = await lab.startRing(10, { tunnel: { upgradeMs: 1000 } });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 20_000), 'ring of 10 formed');
  let pair: [Node, Node] | undefined;
  for (const x of nodes) for (const y of nodes) if (x.address.value > y.address.value && !x.table.get(y.address)) pair ??= [x, y];
  const [big, small] = pair!;
  const fwd = nodes.find((n) => n.table.get(big.address)?.edge.kind === 'function' && n.table.get(small.address)?.edge.kind === 'function')!;
  const ta = (n: Node) => n.listeners[0]!.localTAs()[0]!;
  // Neither can reach the other directly: the Linker falls back to the relay TA.
  lab.net.block(ta(big), ta(small));
  const punches: Array<{ to: Node; dial: boolean; at: number }> = [];
  for (const n of [big, small]) n.link.events.on('punch', (_c: Connection, dial: boolean) => punches.push({ to: n, dial, at: lab.now() }));
  /** `from` links to `to` (its direct TA first, then a relay through fwd); resolves with the connection. */
  const link = (from: Node, to: Node) => from.link.connect({ address: to.address, tas: [ta(to), tunnelTA(to.address, [fwd.address])] }, 'structured.shortcut');
  return { lab, big, small, punches, link, unblock: () => lab.net.unblock(ta(big), ta(small)) };
}

t.test('the driver that made the relay connection lets the peer dial first', async (t) => {
  const { lab, big, small, punches, link, unblock } = await setup(t, 81);
  const c = await link(big, small);
  t.equal(c?.edge.kind, 'tunnel', 'the larger address linked over the relay');
  const t0 = lab.now();
  // From now on the peer can get through (as a NAT'd host's TCP dial reaches a public one).
  unblock();
  t.ok(await lab.waitFor(() => big.table.get(small.address)?.edge.kind === 'function', 10_000), 'the connection became direct');
  t.equal(punches[0]?.to.address.key, small.address.key, 'the first punch went to the smaller address (the larger drives)');
  t.equal(punches[0]?.dial, true, 'asking it to dial');
  t.ok(big.table.get(small.address)?.edge.inbound, 'the peer dialled the direct edge, with no round of ours first');
  t.ok(lab.now() - t0 < 4000, `${lab.now() - t0} ms after the relay link`);
});

t.test('the driver dials first when the peer made the relay connection', async (t) => {
  const { lab, big, small, punches, link } = await setup(t, 82);
  const c = await link(small, big);
  t.equal(c?.edge.kind, 'tunnel', 'the smaller address linked over the relay');
  t.ok(await lab.waitFor(() => punches.length > 0, 5000), 'an upgrade round began');
  t.equal(punches[0]?.to.address.key, small.address.key, 'the punch went to the smaller address (the larger drives)');
  t.equal(punches[0]?.dial, false, 'telling it the driver dials (it only opens its NAT)');
});
