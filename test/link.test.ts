// Link-layer behaviour in virtual time (VirtualLab): keepalive timeouts, TA fallback and
// bounded retries, RPC resends with duplicate suppression under loss, malformed packets.
import t from 'tap';
import { Mode } from '../src/routing/ah-wire.js';
import { TransportAddress } from '../src/transport/ta.js';
import { seededRandom } from '../src/util/random.js';
import { consistency } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

t.test('a silent connection is pinged, then closed after the timeout', async (t) => {
  const lab = new VirtualLab({ seed: 61 });
  t.teardown(() => lab.stop());
  const net = lab.net;
  const [a, b] = await lab.startRing(2, { link: { pingAfterMs: 300, timeoutMs: 1000, unlinkedEdgeMs: 5000 } });
  t.ok(await lab.waitFor(() => a!.table.size === 1 && b!.table.size === 1, 5000), 'linked');
  await lab.sleep(1500);
  t.equal(a!.table.size, 1, 'pings keep an idle but live connection up');
  net.block(a!.info().tas[0]!, b!.info().tas[0]!);
  t.ok(await lab.waitFor(() => a!.table.size === 0 && b!.table.size === 0, 3000), 'both sides close it once it falls silent');
  t.ok(a!.link.stats.timeouts + b!.link.stats.timeouts >= 1, 'counted as a timeout (the other side may see the edge close first)');
});

t.test('the Linker falls back over a peer\'s TAs and gives up in bounded time', async (t) => {
  const lab = new VirtualLab({ seed: 62 });
  t.teardown(() => lab.stop());
  const [a, b] = await lab.startRing(2, { bootstrap: [] });
  const dead = [TransportAddress.parse('brunet.function://sim:60001'), TransportAddress.parse('brunet.function://sim:60002')];
  const c = await a!.link.connect({ address: b!.address, tas: [...dead, ...b!.info().tas] }, 'structured.near');
  t.ok(c, 'linked over the third TA after two dead ones');
  const t0 = lab.now();
  const none = await a!.link.connect({ tas: dead }, 'leaf');
  t.equal(none, null, 'only dead TAs: no connection');
  t.ok(lab.now() - t0 < 20_000, `gave up after ${lab.now() - t0} ms`);
});

t.test('RPC under 20 % loss: resends deliver, duplicates are suppressed', async (t) => {
  const lab = new VirtualLab({ seed: 63 });
  t.teardown(() => lab.stop());
  const net = lab.net;
  const nodes = await lab.startRing(8);
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
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

t.test('the RPC duplicate cache lets requests go once they can no longer be resent', async (t) => {
  const lab = new VirtualLab({ seed: 64 });
  t.teardown(() => lab.stop());
  const [a, b] = await lab.startRing(2);
  t.ok(await lab.waitFor(() => a!.table.size > 0 && b!.table.size > 0, 10_000), 'linked');
  b!.rpc.register('test.Echo', (args) => args[0] ?? null);
  const seen = (b!.rpc as unknown as { seen: Map<string, { at: number }> }).seen;
  const before = seen.size;
  for (let i = 0; i < 30; i++) t.equal(await a!.rpc.call({ address: b!.address, mode: Mode.Exact }, 'test.Echo', [i]), i);
  t.ok(seen.size >= before + 30, `the 30 requests are remembered for duplicates (${seen.size})`);
  await lab.waitFor(() => false, 61_000, 1000);
  t.equal(await a!.rpc.call({ address: b!.address, mode: Mode.Exact }, 'test.Echo', ['last']), 'last');
  const now = lab.clock.now();
  t.ok([...seen.values()].every((e) => now - e.at < 60_000), 'nothing older than the 60 s window is kept');
  t.ok(seen.size < 30, `the cache shrank to what the last minute served (${seen.size})`);
});

t.test('malformed packets on a live edge are dropped and counted', async (t) => {
  const lab = new VirtualLab({ seed: 64 });
  t.teardown(() => lab.stop());
  const [a, b] = await lab.startRing(2);
  t.ok(await lab.waitFor(() => a!.table.size === 1, 5000));
  const edge = [...a!.table.all()][0]!.edge;
  const junk = [new Uint8Array([1]), new Uint8Array([1, 1, 0, 0xff]), new Uint8Array([2, 1, 9]), new Uint8Array(60).fill(2), new Uint8Array([9, 9, 9])];
  for (const p of junk) edge.send(p);
  await lab.sleep(100);
  t.ok(b!.link.stats.malformed + b!.router.stats.malformed >= 3, 'counted');
  const echo = await a!.rpc.call({ address: b!.address, mode: Mode.Exact }, 'sys:link.Ping', ['still here']);
  t.equal(echo, 'still here', 'the link keeps working');
});

t.test('a clean leave: neighbours re-link at once, without waiting for timeouts', async (t) => {
  const lab = new VirtualLab({ seed: 65 });
  t.teardown(() => lab.stop());
  const nodes = await lab.startRing(10, { link: { pingAfterMs: 20_000, timeoutMs: 60_000, unlinkedEdgeMs: 60_000 } });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
  const leaver = nodes.splice(4, 1)[0]!;
  const t0 = lab.now();
  await leaver.stop();
  t.ok(await lab.waitFor(() => consistency(nodes) === 1 && nodes.every((n) => !n.table.get(leaver.address)), 5000), 'ring of 9 consistent again');
  t.ok(lab.now() - t0 < 5000, `healed in ${lab.now() - t0} ms (link timeout is 60 s)`);
  t.equal(nodes.reduce((s, n) => s + n.link.stats.timeouts, 0), 0, 'no connection had to time out');
});
