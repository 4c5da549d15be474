// The UDP fast path (native/udp.cc through udp-batch.ts): batched receive and send, GSO/GRO
// where granted, interoperation with the node:dgram path, and the address handling the
// native side does (formatting sources, parsing destinations). With CI=true a missing addon
// is a failure.
import dgram from 'node:dgram';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { BatchSocket, batchUnavailableReason } from '../src/transport/udp-batch.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import type { DatagramSocket } from '../src/transport/udp-socket.js';
import type { Edge } from '../src/transport/edge.js';
import { FRAGMENT_PAYLOAD } from '../src/transport/udp-fragments.js';
import { realClock } from '../src/util/clock.js';
import { seededRandom } from '../src/util/random.js';


async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let seed = 100;
async function listener(t: Test, fastPath: boolean): Promise<UdpEdgeListener> {
  const l = new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: seededRandom(seed++), fastPath });
  await l.start();
  t.teardown(() => l.stop());
  return l;
}

const message = (n: number, tag: number) => { const m = Buffer.alloc(n); for (let i = 0; i < n; i++) m[i] = (i * 13 + tag) & 255; return m; };
const socketOf = (l: UdpEdgeListener) => (l as unknown as { socket: DatagramSocket }).socket;

function run(): void {
  t.test('fastPath uses the batched socket; fastPath false keeps node:dgram', async (t) => {
    const fast = await listener(t, true), slow = await listener(t, false);
    t.equal(fast.batched, true);
    t.equal(slow.batched, false);
    t.equal(socketOf(fast).batched, true);
  });

  // The interop case of issue 17: either side may be the fast one; small and fragmented
  // messages both ways, on edges both sides opened.
  for (const [aFast, bFast] of [[true, false], [false, true], [true, true]] as const) {
    t.test(`fast ${aFast} <-> fast ${bFast}: packets and fragmented messages both ways`, async (t) => {
      const a = await listener(t, aFast), b = await listener(t, bFast);
      const atB: Buffer[] = [], atA: Buffer[] = [];
      let eb: Edge | undefined;
      b.onEdge = (e) => { eb = e; e.onPacket = (p) => { atB.push(Buffer.from(p)); }; };
      const ea = await a.createEdge(b.localTAs()[0]!);
      ea.onPacket = (p) => { atA.push(Buffer.from(p)); };
      const sizes = [1, 100, 1400, FRAGMENT_PAYLOAD * 3, 60_000];
      const sent = sizes.map((n, i) => message(n, i));
      for (const m of sent) ea.send(m);
      await waitFor('a -> b', () => atB.length === sizes.length);
      for (const m of sent) eb!.send(m);
      await waitFor('b -> a', () => atA.length === sizes.length);
      t.same(atB.map((m) => m.length), sizes);
      t.ok(atB.every((m, i) => m.equals(sent[i]!)), 'a -> b intact');
      t.ok(atA.every((m, i) => m.equals(sent[i]!)), 'b -> a intact');
      t.equal(eb!.remoteTA.port, a.localTAs()[0]!.port, 'the source port learned from the batched receive');
      t.equal(eb!.remoteTA.host, '127.0.0.1');
      t.equal(a.stats.fragmentDrops + b.stats.fragmentDrops, 0);
    });
  }

  t.test('a turn of sends is one batch: sendmmsg, GSO for fragment runs, recvmmsg (and GRO) on receive', async (t) => {
    const a = await listener(t, true), b = await listener(t, true);
    const got: Buffer[] = [];
    b.onEdge = (e) => { e.onPacket = (p) => { got.push(Buffer.from(p)); }; };
    const e = await a.createEdge(b.localTAs()[0]!);
    const sent = Array.from({ length: 40 }, (_v, i) => message(1000, i));
    for (const m of sent) e.send(m);                       // 40 datagrams in one turn
    const big = message(FRAGMENT_PAYLOAD * 20 + 7, 99);    // 21 fragments, same size but the last
    e.send(big);
    await waitFor('all', () => got.length === sent.length + 1);
    t.ok(got.slice(0, 40).every((m, i) => m.equals(sent[i]!)), 'datagrams intact, in order');
    t.ok(got[40]!.equals(big), 'fragmented message intact');
    const sa = batchStats(a), sb = batchStats(b);
    t.equal(sa.datagramsOut, 61, 'every datagram went through the batched socket');
    t.ok(sa.sendCalls <= 4, `${sa.sendCalls} sendmmsg calls for 61 datagrams`);
    t.ok(sb.batchesIn < sb.datagramsIn, `${sb.datagramsIn} datagrams in ${sb.batchesIn} receive batches`);
    const off = offloads(a), offB = offloads(b);
    if (off.gso) t.ok(sa.gsoSends >= 1, `${sa.gsoSends} segmented sends`);
    if (off.gso && offB.gro) t.ok(sb.groBuffers >= 1, `${sb.groBuffers} GRO buffers split into datagrams`);
    t.equal(sb.datagramsIn, 61, 'the receiver saw each datagram once');
  });

  // GSO groups runs of equal sizes (a shorter one ends a run) and GRO hands them back merged:
  // whatever the sizes, a node:dgram receiver and a batched one see exactly what was sent.
  t.test('property: any run of datagram sizes arrives intact and in order, at a dgram and at a batched receiver', async (t) => {
    let failed = 0;
    const tx = new BatchSocket(false, true, (n) => { failed += n; });
    const rx = new BatchSocket(false, true, () => {});
    const plain = dgram.createSocket('udp4');
    t.teardown(() => { tx.close(); rx.close(); plain.close(); });
    tx.bind('127.0.0.1', 0);
    const rxPort = rx.bind('127.0.0.1', 0);
    tx.setBuffers(4 << 20); rx.setBuffers(4 << 20);
    await new Promise<void>((r) => plain.bind(0, '127.0.0.1', r));
    plain.setRecvBufferSize(4 << 20);
    tx.start(() => {});
    const atRx: Buffer[] = [], atPlain: Buffer[] = [];
    rx.start((m) => atRx.push(Buffer.from(m)));
    plain.on('message', (m) => atPlain.push(m));
    const size = fc.oneof(fc.constantFrom(0, 1, 1000, 1452), fc.integer({ min: 0, max: 1452 }), fc.integer({ min: 1453, max: 9000 }));
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.array(size, { minLength: 1, maxLength: 150 }), async (sizes) => {
      atRx.length = 0; atPlain.length = 0;
      const sent = sizes.map((n, i) => { const b = Buffer.alloc(n); for (let k = 0; k < n; k++) b[k] = (k + i * 7 + run) & 255; if (n >= 2) b.writeUInt16BE(i); return b; });
      run++;
      for (const b of sent) tx.send(b.subarray(0, Math.min(3, b.length)), b.subarray(Math.min(3, b.length)), '127.0.0.1', rxPort);
      for (const b of sent) tx.send(b, undefined, '127.0.0.1', plain.address().port);
      tx.flush();
      await waitFor('datagrams', () => atRx.length >= sent.length && atPlain.length >= sent.length);
      t.same(atRx.map((m) => m.length), sizes, 'batched receiver: sizes');
      t.same(atPlain.map((m) => m.length), sizes, 'dgram receiver: sizes');
      return atRx.every((m, i) => m.equals(sent[i]!)) && atPlain.every((m, i) => m.equals(sent[i]!));
    }), { numRuns: 40, seed: 17 });
    t.equal(failed, 0);
    t.ok(tx.stats.gsoSends > 0 || !tx.offloads.gso, `${tx.stats.gsoSends} segmented sends`);
    t.ok(rx.stats.groBuffers > 0 || !rx.offloads.gro, `${rx.stats.groBuffers} GRO buffers`);
  });

  t.test('BatchSocket: IPv6 and mapped IPv4 sources, bad destinations counted, never thrown', async (t) => {
    let failed = 0;
    const s = new BatchSocket(true, true, (n) => { failed += n; });
    t.teardown(() => s.close());
    const port = s.bind('::', 0);
    t.ok(port > 0);
    const seen: Array<[string, number, string]> = [];
    s.start((msg, host, p) => seen.push([host, p, msg.toString()]));
    const v4 = dgram.createSocket('udp4'), v6 = dgram.createSocket('udp6');
    t.teardown(() => { v4.close(); v6.close(); });
    await new Promise<void>((r) => v4.bind(0, '127.0.0.1', r));
    await new Promise<void>((r) => v6.bind(0, '::1', r));
    v4.send('four', port, '127.0.0.1');
    v6.send('six', port, '::1');
    await waitFor('two datagrams', () => seen.length === 2);
    t.same(seen.find((x) => x[2] === 'four'), ['::ffff:127.0.0.1', v4.address().port, 'four'], 'mapped IPv4 source, as node:dgram reports it');
    t.same(seen.find((x) => x[2] === 'six'), ['::1', v6.address().port, 'six']);

    const back: string[] = [];
    v4.on('message', (m) => back.push(`4:${m}`));
    v6.on('message', (m) => back.push(`6:${m}`));
    s.send(Buffer.from('to'), Buffer.from('-four'), '127.0.0.1', v4.address().port);
    s.send(Buffer.from('to-six'), undefined, '::1', v6.address().port);
    s.send(Buffer.from('x'), undefined, '::1', 70000);           // no such port number
    s.send(Buffer.from('x'), undefined, 'localhost', v4.address().port);  // a name: looked up first
    await waitFor('replies', () => back.length >= 3);
    t.same(back.sort(), ['4:to-four', '4:x', '6:to-six']);
    t.equal(failed, 1, 'the bad port is counted as a failed send');
    s.close();
    s.close();
    s.send(Buffer.from('late'), undefined, '::1', v6.address().port);
    t.equal(failed, 2, 'a send after close is counted');
  });

  t.test('an IPv4 socket refuses IPv6 destinations (counted) and rebinding a used port names the error', async (t) => {
    let failed = 0;
    const s = new BatchSocket(false, false, (n) => { failed += n; });
    t.teardown(() => s.close());
    const port = s.bind('127.0.0.1', 0);
    s.start(() => {});
    s.send(Buffer.from('x'), undefined, '::1', port);
    s.flush();
    t.equal(failed, 1);
    t.same(s.offloads, { gro: false, gso: false }, 'offload not asked for');
    const clash = new UdpEdgeListener({ port, host: '127.0.0.1', clock: realClock, random: seededRandom(1), fastPath: true });
    await t.rejects(clash.start(), { message: `udp port ${port}: address already in use` });
  });
}

const batchOf = (l: UdpEdgeListener) => (l as unknown as { socket: DatagramSocket }).socket.batch!;
const batchStats = (l: UdpEdgeListener) => batchOf(l).stats;
const offloads = (l: UdpEdgeListener) => batchOf(l).offloads;

const missing = batchUnavailableReason();
if (missing === null) run();
else if (process.env['CI'] === 'true') t.fail(`batched UDP I/O unavailable: ${missing}`);
else t.plan(0, `batched UDP I/O unavailable: ${missing}`);
