// The double-link race between a relay edge and a direct one, in virtual time: A (the larger
// address) links to B through a relay while B links to A directly, and B's start reaches A
// only after A holds the relay connection. A takes the direct edge in its place (the start
// names A as target), so B must keep it too: closing it as a duplicate left neither side a
// connection (seen in the NAT lab as noudp's peers falling back to relay edges).
import t from 'tap';
import type { Node } from '../src/node/node.js';
import { tunnelTA } from '../src/connection/tunnel.js';
import { consistency } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

t.test('a direct edge wins a double-link race against a relay edge on both sides', async (t) => {
  const lab = new VirtualLab({ seed: 71 });
  t.teardown(() => lab.stop());
  // Upgrades off: only the race itself may turn the relay connection into a direct one.
  const nodes = await lab.startRing(10, { tunnel: { upgradeMs: 0 } });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 20_000), 'ring of 10 formed');
  // Two near neighbours per side and no shortcuts at 10 nodes: most pairs are not linked.
  let pair: [Node, Node] | undefined;
  for (const x of nodes) for (const y of nodes) if (x.address.value > y.address.value && !x.table.get(y.address)) pair ??= [x, y];
  if (!t.ok(pair, 'a pair without a connection')) return;
  const [a, b] = pair!;
  const fwd = nodes.find((n) => n.table.get(a.address) && n.table.get(b.address) && n.table.get(a.address)!.edge.kind !== 'tunnel')!;
  const [ta, tb] = [a.listeners[0]!.localTAs()[0]!, b.listeners[0]!.localTAs()[0]!];
  // Hold B's first packet to A's listener (its start) for 300 ms: A's relay link completes first.
  let held = false;
  lab.net.intercept = (p, from) => {
    if (held || !from.localTA.equals(tb) || !from.remoteTA.equals(ta)) return 'pass';
    held = true;
    lab.clock.setTimeout(() => from.send(p), 300);
    return 'drop';
  };
  const [ca, cb] = await Promise.all([
    a.link.connect({ address: b.address, tas: [tunnelTA(b.address, [fwd.address])] }, 'structured.shortcut'),
    b.link.connect({ address: a.address, tas: [ta] }, 'structured.shortcut'),
  ]);
  t.ok(held, 'B\'s start was held back');
  t.equal(ca?.edge.kind, 'tunnel', 'A linked over the relay');
  t.equal(cb?.edge.kind, 'function', 'B linked directly');
  await lab.sleep(2000);
  const [x, y] = [a.table.get(b.address), b.table.get(a.address)];
  t.equal(x?.edge.kind, 'function', `A holds a direct connection to B (${x?.edge.kind ?? 'none'})`);
  t.equal(y?.edge.kind, 'function', `B holds a direct connection to A (${y?.edge.kind ?? 'none'})`);
  t.ok(x?.edge.inbound && y && !y.edge.inbound, 'both on the edge B dialled (inbound at A, outbound at B)');
  t.equal(y?.edge, cb?.edge, 'B kept the edge it dialled');
});
