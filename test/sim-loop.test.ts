// The simulator's loop processor (bench/sim/loop-clock.ts), the model of bench:ring's libuv
// loop: each pass reads the sockets ready at its start (up to 32 datagrams each, and what
// arrives at a socket before it is read), then runs the timers due at the whole-ms loop time;
// timers count from the whole ms they were set in, 1 ms at least. Costs come from a fake meter
// that callbacks advance, so every time is exact.
import t from 'tap';
import { BATCH, LoopClock } from '../bench/sim/loop-clock.js';
import { SimWorld } from '../bench/sim/world.js';
import { countMemory, MsgCounts } from '../bench/sim/msg-types.js';
import { SimNetwork } from '../src/transport/sim.js';
import { seededRandom } from '../src/util/random.js';
import type { Edge } from '../src/transport/edge.js';

function fake() {
  let ms = 0;
  return { read: () => ms, work: (x: number) => { ms += x; } };
}
const ok = (): boolean => true;

t.test('a pass reads the sockets ready at its start, then runs the timers due by its end', async (t) => {
  const m = fake();
  const clock = new LoopClock(0, m.read);
  const a = {}, b = {};
  const log: string[] = [];
  const at = (s: string) => () => { log.push(`${s}@${clock.now()}`); };
  clock.deliver(a, 1, ok, () => {
    at('a1')();
    m.work(5);
    clock.deliver(b, 0.25, ok, at('b-sent'));
    clock.deliver(a, 0.25, ok, at('a-sent'));
  });
  clock.setTimeout(at('timer'), 2);
  clock.deliver(b, 1.5, ok, at('b1'));
  await clock.advance(20);
  t.same(log, ['a1@1', 'a-sent@6', 'timer@6', 'b-sent@6', 'b1@6'],
    'pass 1 (at 1): only a was ready; it is read on while it holds datagrams, then the timer due at 2 runs; b waits for pass 2, oldest first');
  t.equal(clock.passes, 2);
  t.equal(clock.busyMs, 5);
  t.equal(clock.now(), 20);
});

t.test(`a socket gives at most ${BATCH} datagrams a pass; the timers run before the rest`, async (t) => {
  const m = fake();
  const clock = new LoopClock(0, m.read);
  const a = {};
  const log: string[] = [];
  for (let i = 0; i < 40; i++) clock.deliver(a, 1, ok, () => { log.push('a'); });
  clock.setTimeout(() => log.push('timer'), 1);
  await clock.advance(5);
  t.equal(BATCH, 32, 'as measured on Node 20');
  t.same(log, [...Array(32).fill('a'), 'timer', ...Array(8).fill('a')]);
});

t.test('datagrams dropped at a full buffer are not read: they neither cost nor count in the batch', async (t) => {
  const m = fake();
  const clock = new LoopClock(0, m.read);
  const a = {};
  let read = 0;
  for (let i = 0; i < 45; i++) clock.deliver(a, 1, () => i >= 10, () => { read++; m.work(0.1); });
  clock.setTimeout(() => t.equal(read, 32, 'the first pass read 32 kept ones: the 10 dropped did not count'), 1);
  await clock.advance(10);
  t.equal(read, 35);
  t.ok(Math.abs(clock.busyMs - 3.5) < 1e-9);
});

t.test('timers count from the whole ms they were set in, at least 1 ms; intervals re-arm from when they ran', async (t) => {
  const m = fake();
  const clock = new LoopClock(0, m.read);
  const fired: [string, number][] = [];
  clock.deliver({}, 0.7, ok, () => {
    clock.setTimeout(() => fired.push(['20 ms set at 0.7', clock.now()]), 20);
    clock.setTimeout(() => fired.push(['0 ms set at 0.7', clock.now()]), 0);
    clock.setTimeout(() => fired.push(['2.5 ms set at 0.7', clock.now()]), 2.5);
  });
  const ticks: number[] = [];
  const iv = clock.setInterval(() => { ticks.push(clock.now()); }, 10);
  clock.deliver({}, 9, ok, () => m.work(12)); // busy from 9 to 21: the tick due at 10 runs at 21
  await clock.advance(45);
  iv.cancel();
  t.same(fired, [['0 ms set at 0.7', 1], ['2.5 ms set at 0.7', 3], ['20 ms set at 0.7', 21]],
    '0 → 1 ms; 0 + 2.5 is due once the loop time reaches 3; 0 + 20 = 20 found due in the pass that ends at 21');
  t.same(ticks, [21, 31, 41], 'due at 10, run at 21, re-armed from 21');
});

t.test('run() ends with the pass in progress at its bound, and goes on from there', async (t) => {
  const m = fake();
  const clock = new LoopClock(0, m.read);
  const log: number[] = [];
  clock.deliver({}, 1, ok, () => m.work(50));
  clock.setTimeout(() => log.push(clock.now()), 2);
  await clock.advance(20);
  t.same(log, [51], 'the pass that started at 1 ran to its end, timers included');
  t.equal(clock.now(), 51, 'the clock is past the bound');
  await clock.advance(10);
  t.equal(clock.now(), 61);
  t.equal(clock.pending, 0);
});

t.test('on a share of a core each callback takes its cost over the share; busyMs keeps the CPU', async (t) => {
  const m = fake();
  const clock = new LoopClock(0, m.read, BATCH, 0.5);
  const log: number[] = [];
  clock.deliver({}, 1, ok, () => m.work(2));
  clock.setTimeout(() => log.push(clock.now()), 2);
  await clock.advance(20);
  t.same(log, [5], '2 ms of CPU on half a core: the pass from 1 ends at 5');
  t.equal(clock.busyMs, 2);
  t.throws(() => new LoopClock(0, m.read, BATCH, 0), /share 0 must be in/);
});

t.test('on the loop processor a busy socket drops at a full receive buffer (SimNetwork io)', async (t) => {
  const m = fake();
  const clock = new LoopClock(0, m.read);
  const net = new SimNetwork({ clock, random: seededRandom(3), latency: 'lan', rcvbuf: () => 3, io: (to, ms, admit, fn) => clock.deliver(to, ms, admit, fn) });
  const a = net.listener(), b = net.listener();
  await a.start(); await b.start();
  let inbound: Edge | undefined;
  b.onEdge = (e) => { inbound = e; };
  const e = await clock.until(a.createEdge(b.ta), 10, 0.5);
  t.ok(inbound, 'the connect completed within the event that asked for it');
  const got: number[] = [];
  inbound!.onPacket = (p) => { got.push(p[0]!); m.work(1); };
  for (let i = 0; i < 10; i++) e.send(Uint8Array.of(i));
  await clock.advance(50);
  t.same(got, [0, 1, 2], 'three fit the buffer; the rest arrived while they were unread');
  t.equal(b.stats.dropped, 7);
});

/** A small overlay on the loop processor where every event costs 0.01 ms: its trace. */
async function trace(seed: number): Promise<Record<string, unknown>> {
  let reads = 0;
  const w = new SimWorld({ nodes: 16, seed, security: 'none', latency: 'lan', joinRate: 200, meter: () => (reads++) * 0.005, loop: true, ioMs: 0.015 });
  const counts = new MsgCounts();
  countMemory(w.net, counts);
  w.scheduleJoins();
  for (let i = 0; i < 600 && !w.consistent(); i++) await w.clock.advance(50);
  const clock = w.clock as LoopClock;
  return { consistent: w.consistent(), at: clock.now(), fired: clock.fired, passes: clock.passes, busy: clock.busyMs, traffic: w.traffic(), types: counts.snapshot() };
}

t.test('the same seed and the same measured costs give the same trace', async (t) => {
  const one = await trace(11), two = await trace(11);
  t.equal(one.consistent, true, `consistent at ${String(one.at)} virtual ms`);
  t.same(two, one, 'identical: time, events, passes, busy time, traffic by type');
  const other = await trace(12);
  t.not(JSON.stringify(other.types), JSON.stringify(one.types), 'another seed, another trace');
});
