// Link-layer behaviour on the in-memory transport: keepalive timeouts, TA fallback and
// bounded retries, RPC resends with duplicate suppression under loss, malformed packets.
import t from 'tap';
import { Mode } from '../src/routing/ah-wire.js';
import { TransportAddress } from '../src/transport/ta.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { seededRandom } from '../src/util/random.js';
import { consistency, startRing, stopAll, waitFor } from './helpers/ring.js';

t.test('a silent connection is pinged, then closed after the timeout', async (t) => {
  const net = new MemoryNetwork();
  const [a, b] = await startRing(2, 'memory', { net, link: { pingAfterMs: 300, timeoutMs: 1000, unlinkedEdgeMs: 5000 } });
  t.teardown(() => stopAll([a!, b!]));
  t.ok(await waitFor(() => a!.table.size === 1 && b!.table.size === 1, 5000), 'linked');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(a!.table.size, 1, 'pings keep an idle but live connection up');
  net.block(a!.info().tas[0]!, b!.info().tas[0]!);
  t.ok(await waitFor(() => a!.table.size === 0 && b!.table.size === 0, 3000), 'both sides close it once it falls silent');
  t.ok(a!.link.stats.timeouts + b!.link.stats.timeouts >= 1, 'counted as a timeout (the other side may see the edge close first)');
});

t.test('the Linker falls back over a peer\'s TAs and gives up in bounded time', async (t) => {
  const net = new MemoryNetwork();
  const [a, b] = await startRing(2, 'memory', { net, bootstrap: [] });
  t.teardown(() => stopAll([a!, b!]));
  const dead = [TransportAddress.parse('brunet.function://localhost:60001'), TransportAddress.parse('brunet.function://localhost:60002')];
  const c = await a!.link.connect({ address: b!.address, tas: [...dead, ...b!.info().tas] }, 'structured.near');
  t.ok(c, 'linked over the third TA after two dead ones');
  const t0 = Date.now();
  const none = await a!.link.connect({ tas: dead }, 'leaf');
  t.equal(none, null, 'only dead TAs: no connection');
  t.ok(Date.now() - t0 < 20_000, `gave up after ${Date.now() - t0} ms`);
});

t.test('RPC under 20 % loss: resends deliver, duplicates are suppressed', async (t) => {
  const net = new MemoryNetwork();
  const nodes = await startRing(8, 'memory', { net });
  t.teardown(() => stopAll(nodes));
  t.ok(await waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
  const runs = new Map<string, number>();
  for (const n of nodes) n.rpc.register('test.Count', (args) => { const k = String(args[0]); runs.set(k, (runs.get(k) ?? 0) + 1); return k; });
  net.setLossRate(0.2, seededRandom(7));
  let ok = 0;
  await Promise.all(Array.from({ length: 100 }, (_, i) => {
    const [a, b] = [nodes[i % 8]!, nodes[(i * 3 + 1) % 8]!];
    return a.rpc.call({ address: b.address, mode: Mode.Exact }, 'test.Count', [`k${i}`], { timeoutMs: 8000, resends: 6 })
      .then((r) => { if (r === `k${i}`) ok++; }, () => {});
  }));
  net.setLossRate(0, seededRandom(1));
  t.ok(ok >= 95, `${ok}/100 calls answered despite loss`);
  t.ok([...runs.values()].every((n) => n === 1), 'every handler ran exactly once per call');
  const resends = nodes.reduce((s, n) => s + n.rpc.stats.resends, 0);
  const dups = nodes.reduce((s, n) => s + n.rpc.stats.duplicates, 0);
  t.ok(resends > 0, `requests were resent (${resends})`);
  t.ok(dups >= 0, `duplicates suppressed: ${dups}`);
});

t.test('malformed packets on a live edge are dropped and counted', async (t) => {
  const net = new MemoryNetwork();
  const [a, b] = await startRing(2, 'memory', { net });
  t.teardown(() => stopAll([a!, b!]));
  t.ok(await waitFor(() => a!.table.size === 1, 5000));
  const edge = [...a!.table.all()][0]!.edge;
  const junk = [new Uint8Array([1]), new Uint8Array([1, 1, 0, 0xff]), new Uint8Array([2, 1, 9]), new Uint8Array(60).fill(2), new Uint8Array([9, 9, 9])];
  for (const p of junk) edge.send(p);
  await new Promise((r) => setTimeout(r, 100));
  t.ok(b!.link.stats.malformed + b!.router.stats.malformed >= 3, 'counted');
  const echo = await a!.rpc.call({ address: b!.address, mode: Mode.Exact }, 'sys:link.Ping', ['still here']);
  t.equal(echo, 'still here', 'the link keeps working');
});

t.test('a clean leave: neighbours re-link at once, without waiting for timeouts', async (t) => {
  const net = new MemoryNetwork();
  const nodes = await startRing(10, 'memory', { net, link: { pingAfterMs: 20_000, timeoutMs: 60_000, unlinkedEdgeMs: 60_000 } });
  t.teardown(() => stopAll(nodes));
  t.ok(await waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
  const leaver = nodes.splice(4, 1)[0]!;
  const t0 = Date.now();
  await leaver.stop();
  t.ok(await waitFor(() => consistency(nodes) === 1 && nodes.every((n) => !n.table.get(leaver.address)), 5000), 'ring of 9 consistent again');
  t.ok(Date.now() - t0 < 5000, `healed in ${Date.now() - t0} ms (link timeout is 60 s)`);
  t.equal(nodes.reduce((s, n) => s + n.link.stats.timeouts, 0), 0, 'no connection had to time out');
});
