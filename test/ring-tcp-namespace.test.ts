// A TCP-only overlay works; nodes of another BrunetNamespace never link; the double-link
// race settles on exactly one connection.
import t from 'tap';
import { Mode } from '../src/routing/ah-wire.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { consistency, ringCorrect, startRing, stopAll, waitFor } from './helpers/ring.js';

t.test('a TCP-only overlay reaches consistency and routes', async (t) => {
  const nodes = await startRing(10, 'tcp');
  t.teardown(() => stopAll(nodes));
  t.ok(await waitFor(() => consistency(nodes) === 1 && ringCorrect(nodes), 20_000), 'consistent over TCP');
  const r = await nodes[0]!.rpc.call({ address: nodes[7]!.address, mode: Mode.Exact }, 'Information.Info', []);
  const info = r as { [k: string]: unknown };
  t.ok((info.tcp as number) > 0, 'Information.Info counts tcp edges');
  t.equal(info.udp, 0);
});

t.test('nodes of another namespace stay out', async (t) => {
  const net = new MemoryNetwork();
  const ring = await startRing(6, 'memory', { net, namespace: 'alpha' });
  t.teardown(() => stopAll(ring));
  t.ok(await waitFor(() => consistency(ring) === 1, 10_000), 'alpha ring formed');
  const boot = ring[0]!.info().tas;
  const outsiders = await startRing(3, 'memory', { net, namespace: 'beta', bootstrap: boot });
  t.teardown(() => stopAll(outsiders));
  await new Promise((r) => setTimeout(r, 3000));
  const alpha = new Set(ring.map((n) => n.address.key));
  for (const o of outsiders) {
    t.notOk([...o.table.all()].some((c) => alpha.has(c.address.key)), 'outsider holds no link into alpha');
  }
  for (const n of ring) {
    t.notOk([...n.table.all()].some((c) => !alpha.has(c.address.key)), 'alpha node holds no outsider link');
  }
  t.ok(ring[0]!.link.stats.refused > 0, 'the bootstrap refused the foreign namespace');
  t.equal(consistency(ring), 1, 'alpha ring untouched');
});

t.test('simultaneous links in both directions settle on one connection', async (t) => {
  const net = new MemoryNetwork();
  const [a, b] = await startRing(2, 'memory', { net, bootstrap: [] });
  t.teardown(() => stopAll([a!, b!]));
  for (let round = 0; round < 5; round++) {
    const [ca, cb] = await Promise.all([
      a!.link.connect(b!.info(), 'structured.near'),
      b!.link.connect(a!.info(), 'structured.near'),
    ]);
    t.ok(ca && cb, 'both sides see a connection');
    t.equal(a!.table.size, 1);
    t.equal(b!.table.size, 1);
    t.equal(ca!.edge.closed, false);
    t.equal(cb!.edge.closed, false);
    // Both ends agree on the edge: the winner is the larger address's outbound link.
    const winnerIsA = a!.address.value > b!.address.value;
    t.equal(ca!.initiator, winnerIsA, 'larger address initiated the surviving link');
    a!.link.close(ca!, 'test');
    await waitFor(() => a!.table.size === 0 && b!.table.size === 0, 2000);
  }
  t.equal(await a!.link.connect(a!.info(), 'structured.near'), null, 'a self-link is refused');
});
