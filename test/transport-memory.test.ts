import t, { type Test } from 'tap';
import type { Edge } from '../src/transport/edge.js';
import { MemoryNetwork, type MemoryEdgeListener } from '../src/transport/memory.js';
import { TransportAddress } from '../src/transport/ta.js';
import { seededRandom } from '../src/util/random.js';

async function waitFor(what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
const tick = () => new Promise((r) => setImmediate(r));
const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const text = (p: Uint8Array) => Buffer.from(p).toString();

async function started(t: Test, net: MemoryNetwork, n: number): Promise<MemoryEdgeListener[]> {
  const ls = Array.from({ length: n }, () => net.listener());
  await Promise.all(ls.map((l) => l.start()));
  t.teardown(() => Promise.all(ls.map((l) => l.stop())));
  return ls;
}

function collect(l: MemoryEdgeListener): { edges: Edge[]; got: string[] } {
  const r = { edges: [] as Edge[], got: [] as string[] };
  l.onEdge = (e) => { r.edges.push(e); e.onPacket = (p) => r.got.push(text(p)); };
  return r;
}

t.test('edges, addresses and asynchronous delivery', async (t) => {
  const net = new MemoryNetwork();
  const [a, b] = await started(t, net, 2);
  t.same(a!.localTAs().map(String), [`brunet.function://localhost:${a!.port}`]);
  const rb = collect(b!);
  const e = await a!.createEdge(b!.localTAs()[0]!);
  t.equal(rb.edges.length, 1, 'onEdge fired before createEdge resolved');
  t.equal(e.kind, 'function');
  t.notOk(e.inbound);
  t.ok(rb.edges[0]!.inbound);
  t.ok(rb.edges[0]!.remoteTA.equals(a!.ta));
  const buf = bytes('one');
  e.send(buf);
  buf[0] = 0x58; // mutating after send must not affect delivery
  t.same(rb.got, [], 'not delivered synchronously');
  await waitFor('delivery', () => rb.got.length === 1);
  t.same(rb.got, ['one']);
  const back: string[] = [];
  e.onPacket = (p) => back.push(text(p));
  rb.edges[0]!.send(bytes('two'));
  await waitFor('reply', () => back.length === 1);
  t.equal(a!.edgeCount, 1);
  t.equal(b!.edgeCount, 1);
  t.equal(b!.stats.packetsIn, 1);
  await t.rejects(a!.createEdge(TransportAddress.parse('brunet.udp://127.0.0.1:5')), /cannot reach/);
  await t.rejects(a!.createEdge(new TransportAddress('function', 'localhost', 999)), /connection refused/);
});

t.test('many edges between all pairs deliver to the right edge', async (t) => {
  const net = new MemoryNetwork();
  const ls = await started(t, net, 4);
  const got: string[] = [];
  for (const l of ls) l.onEdge = (e) => { e.onPacket = (p) => got.push(`${l.port}<${e.remoteTA.port}:${text(p)}`); };
  const expected: string[] = [];
  for (const a of ls) for (const b of ls) {
    if (a === b) continue;
    const e = await a.createEdge(b.ta);
    e.send(bytes(`${a.port}>${b.port}`));
    expected.push(`${b.port}<${a.port}:${a.port}>${b.port}`);
  }
  await waitFor('all', () => got.length === 12);
  t.same(got.sort(), expected.sort());
});

t.test('close propagates asynchronously; stop closes peers', async (t) => {
  const net = new MemoryNetwork();
  const [a, b] = await started(t, net, 2);
  const rb = collect(b!);
  const e = await a!.createEdge(b!.ta);
  const reasons: string[] = [];
  e.onClose = (_e, r) => reasons.push(`a:${r}`);
  rb.edges[0]!.onClose = (_e, r) => reasons.push(`b:${r}`);
  e.close('bye');
  e.close();
  t.same(reasons, ['a:bye'], 'local close is immediate and fires once');
  t.notOk(rb.edges[0]!.closed);
  await tick();
  t.same(reasons, ['a:bye', 'b:closed by peer']);
  e.send(bytes('x'));
  t.equal(a!.stats.sendErrors, 1, 'send on a closed edge is counted');

  const e2 = await a!.createEdge(b!.ta);
  await b!.stop();
  await waitFor('peer closed', () => e2.closed);
  t.equal(a!.edgeCount, 0);
  t.equal(b!.edgeCount, 0);
  await t.rejects(a!.createEdge(b!.ta), /connection refused/);
});

t.test('port in use and port reuse', async (t) => {
  const net = new MemoryNetwork();
  const a = net.listener({ port: 7 });
  await a.start();
  await t.rejects(net.listener({ port: 7 }).start(), /function port 7: address already in use/);
  const auto = net.listener();
  t.not(auto.port, 7);
  await a.stop();
  const again = net.listener({ port: 7 });
  await again.start();
  await again.stop();
});

t.test('partitions drop packets and refuse edges until unblocked', async (t) => {
  const net = new MemoryNetwork();
  const [a, b, c] = await started(t, net, 3);
  const rb = collect(b!);
  const e = await a!.createEdge(b!.ta);
  net.block(b!.ta, a!.ta);
  t.ok(net.isBlocked(a!.ta, b!.ta), 'symmetric');
  e.send(bytes('lost'));
  await t.rejects(a!.createEdge(b!.ta), /unreachable/);
  const ec = await c!.createEdge(b!.ta);
  ec.send(bytes('from c'));
  await waitFor('c delivery', () => rb.got.length === 1);
  t.same(rb.got, ['from c'], 'only the partitioned pair is affected');
  t.equal(a!.stats.dropped, 1);
  net.unblock(a!.ta, b!.ta);
  e.send(bytes('found'));
  await waitFor('after heal', () => rb.got.length === 2);
  t.same(rb.got, ['from c', 'found']);
});

t.test('the interceptor sees every packet and can pass, drop, replace or add packets', async (t) => {
  const net = new MemoryNetwork();
  const [a, b, c] = await started(t, net, 3);
  const rb = collect(b!);
  const e = await a!.createEdge(b!.ta);
  const ec = await c!.createEdge(b!.ta);
  const seen: string[] = [];
  net.intercept = (p, from) => {
    seen.push(`${from.localTA.port}->${from.remoteTA.port} ${text(p)}`);
    if (!from.localTA.equals(a!.ta)) return 'pass';
    const s = text(p);
    if (s === 'drop me') return 'drop';
    if (s === 'swap') return [bytes('swapped')];
    if (s === 'wrap') return [bytes('before'), p, bytes('after')];
    if (s === 'none') return [];
    return 'pass';
  };
  const buf = bytes('wrap');
  for (const s of ['plain', 'drop me', 'swap', 'none']) e.send(bytes(s));
  e.send(buf);
  buf.fill(0x58); // what the interceptor passes on is copied like any packet
  ec.send(bytes('from c'));
  t.same(seen, [
    ...['plain', 'drop me', 'swap', 'none', 'wrap'].map((s) => `${a!.port}->${b!.port} ${s}`), `${c!.port}->${b!.port} from c`,
  ], 'every packet, synchronously, with the sending edge');
  await waitFor('delivery', () => rb.got.length === 6);
  await tick();
  t.same(rb.got, ['plain', 'swapped', 'before', 'wrap', 'after', 'from c'], 'in order, replaced and added');
  t.equal(a!.stats.packetsOut, 5, 'sends are counted once, whatever the verdict');
  t.equal(a!.stats.dropped, 1, "'drop' counts as dropped");
  t.equal(b!.stats.packetsIn, 6, 'each delivered packet counts at the receiver');
  net.block(a!.ta, b!.ta);
  e.send(bytes('wrap'));
  t.equal(a!.stats.dropped, 4, 'a partition drops each packet the interceptor returns');
  net.unblock(a!.ta, b!.ta);
  net.intercept = undefined;
  e.send(bytes('drop me'));
  await waitFor('unset interceptor passes everything', () => rb.got.at(-1) === 'drop me');
});

t.test('loss rate drops roughly the requested fraction', async (t) => {
  const net = new MemoryNetwork();
  const [a, b] = await started(t, net, 2);
  const rb = collect(b!);
  const e = await a!.createEdge(b!.ta);
  net.setLossRate(0.3, seededRandom(42));
  for (let i = 0; i < 1000; i++) e.send(bytes(String(i)));
  await waitFor('drain', () => rb.got.length + a!.stats.dropped === 1000);
  await tick();
  t.ok(rb.got.length > 600 && rb.got.length < 800, `delivered ${rb.got.length}`);
  t.throws(() => net.setLossRate(2, seededRandom(1)));
  net.setLossRate(0, seededRandom(1));
  e.send(bytes('sure'));
  await waitFor('lossless', () => rb.got.at(-1) === 'sure');
});

t.test('handler exceptions are contained', async (t) => {
  const net = new MemoryNetwork();
  const [a, b] = await started(t, net, 2);
  b!.onEdge = (e) => { e.onPacket = () => { throw new Error('boom'); }; };
  const e = await a!.createEdge(b!.ta);
  e.send(bytes('x'));
  await waitFor('counted', () => b!.stats.handlerErrors === 1);
  t.pass('no uncaught exception');
});
