// The simulator's measured processor, the model of bench:ring's one event loop: a VirtualClock
// with a meter runs its events one at a time, each costing what the meter says its callback and
// the continuations it caused took; an event that comes due while the processor is busy starts
// when it is free and sees that time; intervals re-arm from when they ran. processorMeter()
// counts CPU time, not time spent waiting. Costs here come from a fake meter that callbacks
// advance, so every time is exact.
import t from 'tap';
import { VirtualClock } from '../src/util/virtual-clock.js';
import { processorMeter } from '../bench/sim/processor.js';
import { SimWorld } from '../bench/sim/world.js';
import { RcvBuffers } from '../src/transport/sim-rcvbuf.js';
import { SimNetwork } from '../src/transport/sim.js';
import { seededRandom } from '../src/util/random.js';
import type { Edge } from '../src/transport/edge.js';

/** A meter that only moves when a callback "works". */
function fake() {
  let ms = 0;
  return { read: () => ms, work: (x: number) => { ms += x; } };
}

t.test('events run one after another; a due event waits for the one in progress and sees the later time', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  const ran: [string, number][] = [];
  clock.setTimeout(() => { ran.push(['a', clock.now()]); m.work(5); }, 1);
  clock.setTimeout(() => { ran.push(['b', clock.now()]); m.work(2); }, 2);
  clock.setTimeout(() => { ran.push(['c', clock.now()]); }, 3);
  clock.setTimeout(() => { ran.push(['d', clock.now()]); }, 20);
  await clock.advance(30);
  t.same(ran, [['a', 1], ['b', 6], ['c', 8], ['d', 20]], 'b starts when a ends, c when b ends; d, due after, on time');
  t.equal(clock.busyMs, 7, 'the processor was busy 7 ms');
  t.equal(clock.now(), 30);
});

t.test('an event costs its promise continuations too, and timers it sets count from its start', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  const ran: number[] = [];
  clock.setTimeout(() => {
    m.work(1);
    void Promise.resolve().then(() => Promise.resolve()).then(() => { m.work(3); clock.setTimeout(() => ran.push(clock.now()), 1); });
  }, 0);
  clock.setTimeout(() => ran.push(clock.now()), 0.5);
  await clock.advance(10);
  t.same(ran, [4, 4], 'the 0.5 ms timer waited for all 4 ms; the one set at 0 + 1 ms waited too, and ran after it');
  t.equal(clock.busyMs, 4);
});

t.test('a cancelled timer never runs, even while deferred; intervals re-arm from when they ran', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  const ran: number[] = [];
  clock.setTimeout(() => m.work(10), 0);
  const late = clock.setTimeout(() => ran.push(-1), 2);
  clock.setTimeout(() => late.cancel(), 1); // due at 1, runs at 10, before the deferred one
  const ticks: number[] = [];
  const iv = clock.setInterval(() => { ticks.push(clock.now()); }, 4);
  await clock.advance(19);
  t.same(ran, [], 'cancelled');
  t.same(ticks, [10, 14, 18], 'due at 4, ran at 10, then every 4 ms from there');
  iv.cancel();
  await clock.advance(20);
  t.same(ticks, [10, 14, 18]);
});

t.test('run() stops at its bound while the processor is still busy, and resumes there', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  const ran: number[] = [];
  clock.setTimeout(() => m.work(50), 0);
  clock.setTimeout(() => ran.push(clock.now()), 1);
  await clock.advance(20);
  t.same(ran, [], 'still waiting at 20');
  t.equal(clock.now(), 20);
  await clock.advance(40);
  t.same(ran, [50]);
});

t.test('without a meter the clock is unchanged: events at their due times, no busy time', async (t) => {
  const clock = new VirtualClock();
  const ran: number[] = [];
  for (const at of [1, 1, 2]) clock.setTimeout(() => ran.push(clock.now()), at);
  await clock.advance(5);
  t.same(ran, [1, 1, 2]);
  t.equal(clock.busyMs, 0);
});

t.test('processorMeter counts CPU work, not time spent waiting', async (t) => {
  const m = processorMeter();
  t.teardown(() => m.close());
  const a = m.read();
  await new Promise((r) => setTimeout(r, 100));
  const idle = m.read() - a;
  const b = m.read();
  const end = performance.now() + 30;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  const busy = m.read() - b;
  t.ok(x > 0);
  t.ok(idle >= 0 && idle < 20, `100 ms asleep cost ${idle.toFixed(2)} ms`);
  t.ok(busy > 0 && busy <= 40, `30 wall ms of computing cost ${busy.toFixed(2)} ms (up to 30 of CPU, less when the machine is shared)`);
  const s = m.share();
  t.ok(s > 0 && s <= 1, `main thread share ${s}`);
});

t.test('a small overlay forms on the measured processor, and its time to consistency holds the processing', async (t) => {
  // The meter is read before and after each event and moves 0.2 ms a reading: every event costs 0.2 ms.
  let reads = 0;
  const w = new SimWorld({ nodes: 16, seed: 5, security: 'none', latency: 'lan', joinRate: 1000, meter: () => (reads++) * 0.2 });
  w.scheduleJoins();
  const pure = new SimWorld({ nodes: 16, seed: 5, security: 'none', latency: 'lan', joinRate: 1000 });
  pure.scheduleJoins();
  const formed = async (x: SimWorld) => {
    for (let i = 0; i < 600 && !x.consistent(); i++) await x.clock.advance(50);
    return x.consistent() ? x.clock.now() : NaN;
  };
  const [tm, tp] = [await formed(w), await formed(pure)];
  t.ok(Number.isFinite(tm) && Number.isFinite(tp), `consistent at ${tm} ms on the processor, ${tp} ms without`);
  t.ok(Math.abs(w.clock.busyMs - w.clock.fired * 0.2) < 1e-6, `each of ${w.clock.fired} events cost 0.2 ms`);
  t.ok(tm >= tp + 50 && tm >= w.clock.busyMs / 2, `the processing (busy ${w.clock.busyMs.toFixed(1)} ms) delayed consistency`);
});

t.test('a receive buffer holds what arrived and is not yet read; one that arrives at a full buffer is dropped', async (t) => {
  const b = new RcvBuffers<object>((bytes) => (bytes <= 100 ? 2 : 1));
  const sock = {}, other = {};
  // Arrivals at 1, 2, 3 are read at 10, 11, 12: at 3 the two before it are still unread.
  t.same([b.admit(sock, 50, 1, 10), b.admit(sock, 50, 2, 11), b.admit(sock, 50, 3, 12)], [true, true, false]);
  t.equal(b.admit(other, 50, 3, 12), true, 'each socket has its own buffer');
  t.equal(b.admit(sock, 50, 10.5, 13), true, 'at 10.5 the first was read: room for one');
  t.equal(b.admit(sock, 500, 10.6, 14), false, 'a large datagram takes a whole buffer (capacity 1 at that size)');
  t.equal(b.admit(sock, 500, 20, 20), true, 'all read by 20');
  t.equal(b.dropped, 2);
});

t.test('on the measured processor a busy network drops packets at full receive buffers', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  const net = new SimNetwork({ clock, random: seededRandom(3), latency: 'lan', rcvbuf: () => 3 });
  const a = net.listener(), b = net.listener();
  await a.start(); await b.start();
  let inbound: Edge | undefined;
  b.onEdge = (e) => { inbound = e; };
  const e = await clock.until(a.createEdge(b.ta), 10, 0.5);
  const got: number[] = [];
  inbound!.onPacket = (p) => { got.push(p[0]!); m.work(1); }; // 1 ms a packet
  for (let i = 0; i < 10; i++) e.send(Uint8Array.of(i)); // all arrive at once
  await clock.advance(50);
  t.same(got, [0, 1, 2], 'the buffer held three; the rest arrived while they were unread');
  t.equal(b.stats.dropped, 7);
  e.send(Uint8Array.of(10));
  await clock.advance(5);
  t.same(got, [0, 1, 2, 10], 'an emptied buffer takes packets again');
});

t.test('charge() adds to the cost of the event in progress; without a meter it does nothing', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  const ran: number[] = [];
  clock.setTimeout(() => { m.work(1); clock.charge(2); }, 0);
  clock.setTimeout(() => ran.push(clock.now()), 0);
  await clock.advance(10);
  t.same(ran, [3], 'the next event waited for 1 ms measured + 2 ms charged');
  t.equal(clock.busyMs, 3);
  const plain = new VirtualClock();
  plain.setTimeout(() => plain.charge(5), 0);
  const at: number[] = [];
  plain.setTimeout(() => at.push(plain.now()), 1);
  await plain.advance(10);
  t.same(at, [1]);
  t.equal(plain.busyMs, 0);
});

t.test('each packet delivered on the measured processor costs onDelivery; dropped ones do not', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  const net = new SimNetwork({ clock, random: seededRandom(3), latency: 'lan', rcvbuf: () => 2, onDelivery: () => clock.charge(0.5) });
  const a = net.listener(), b = net.listener();
  await a.start(); await b.start();
  let inbound: Edge | undefined;
  b.onEdge = (e) => { inbound = e; };
  const e = await clock.until(a.createEdge(b.ta), 10, 0.5);
  await clock.advance(5);
  const got: number[] = [];
  inbound!.onPacket = () => { got.push(clock.now()); };
  const busy0 = clock.busyMs, t0 = clock.now();
  for (let i = 0; i < 5; i++) e.send(Uint8Array.of(i));
  await clock.advance(20);
  t.same(got.map((x) => Math.round((x - t0) * 1e6) / 1e6), [0.2, 0.7], 'two fit the buffer, each read 0.5 ms after the one before');
  t.ok(Math.abs(clock.busyMs - busy0 - 1) < 1e-9, 'two deliveries charged, three drops not');
});
