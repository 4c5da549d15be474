// SimNetwork's shared processor (sharedCpuMs), the model of bench:ring's one event loop: each
// delivery waits for the ones before it and costs the set time; timers of processorClock() that
// come due while it is busy run when it is free, and a cancelled one never runs.
import t from 'tap';
import { SimNetwork } from '../src/transport/sim.js';
import { seededRandom } from '../src/util/random.js';
import { VirtualClock } from '../src/util/virtual-clock.js';
import type { Edge } from '../src/transport/edge.js';

async function pair(sharedCpuMs: number) {
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: seededRandom(3), latency: 'lan', sharedCpuMs });
  const a = net.listener(), b = net.listener();
  await a.start(); await b.start();
  let inbound: Edge | undefined;
  b.onEdge = (e) => { inbound = e; };
  const e = await clock.until(a.createEdge(b.ta), 10, 0.5);
  await clock.advance(10); // let the processor go idle
  const got: [number, number][] = [];
  inbound!.onPacket = (p) => got.push([p[0]!, clock.now()]);
  return { clock, net, e, got };
}

const near = (x: number, y: number) => Math.abs(x - y) < 1e-9;

t.test('deliveries are served one after another, each costing sharedCpuMs', async (t) => {
  const { clock, e, got } = await pair(2);
  const sentAt = clock.now();
  for (let i = 1; i <= 3; i++) e.send(Uint8Array.of(i));
  await clock.advance(20);
  t.same(got.map(([p]) => p), [1, 2, 3], 'in order');
  // LAN latency 0.2 ms, then 2 ms each on the one processor.
  t.ok(got.every(([, at], i) => near(at, sentAt + 0.2 + 2 * (i + 1))), `at ${got.map(([, at]) => at - sentAt).join(', ')} ms after sending`);
  await clock.advance(10);
  const again = clock.now();
  e.send(Uint8Array.of(4));
  await clock.advance(20);
  t.ok(near(got[3]![1], again + 0.2 + 2), 'an idle processor serves the next delivery at once');
});

t.test('without a processor cost, deliveries only take the latency and the clock is the plain one', async (t) => {
  const { clock, net, e, got } = await pair(0);
  const sentAt = clock.now();
  e.send(Uint8Array.of(1)); e.send(Uint8Array.of(2));
  await clock.advance(5);
  t.same(got, [[1, sentAt + 0.2], [2, sentAt + 0.2]]);
  t.equal(net.processorClock(clock), clock);
});

t.test('a timer that comes due while the processor is busy waits for it; a cancelled one never runs', async (t) => {
  const { clock, net, e } = await pair(5);
  const pc = net.processorClock(clock);
  const t0 = clock.now();
  for (let i = 0; i < 4; i++) e.send(Uint8Array.of(i)); // busy until t0 + 0.2 + 20
  const ran: number[] = [];
  pc.setTimeout(() => ran.push(clock.now() - t0), 1);
  const cancelled = pc.setTimeout(() => ran.push(-1), 1);
  await clock.advance(3);
  cancelled.cancel(); // due at 1 ms, deferred: cancelling still stops it
  let ticks = 0;
  const iv = pc.setInterval(() => { ticks++; }, 100);
  await clock.advance(30);
  t.equal(ran.length, 1, 'the cancelled timer did not run');
  t.ok(near(ran[0]!, 20.2), `ran at ${ran[0]} ms, when the processor freed (not at 1 ms)`);
  const idleAt = clock.now();
  const free: number[] = [];
  pc.setTimeout(() => free.push(clock.now() - idleAt), 4);
  await clock.advance(250);
  t.same(free, [4], 'on an idle processor a timer runs on time');
  t.equal(ticks, 2, 'intervals keep running');
  iv.cancel();
  await clock.advance(500);
  t.equal(ticks, 2, 'a cancelled interval stops');
});
