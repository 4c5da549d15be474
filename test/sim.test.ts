// The simulator: SimNetwork delivers on the virtual clock with the modelled latency and
// seeded loss; a small overlay of real nodes reaches ring consistency 1.0 in virtual time,
// and the same seed gives the same timeline.
import t from 'tap';
import { SimNetwork } from '../src/transport/sim.js';
import { seededRandom } from '../src/util/random.js';
import { VirtualClock } from '../src/util/virtual-clock.js';
import { SimWorld } from '../bench/sim/world.js';
import type { Edge } from '../src/transport/edge.js';

t.test('packets arrive after the pair latency, in order, on virtual time only', async (t) => {
  for (const model of ['lan', 'wan'] as const) {
    const clock = new VirtualClock();
    const net = new SimNetwork({ clock, random: seededRandom(7), latency: model });
    const a = net.listener(), b = net.listener();
    await a.start(); await b.start();
    let inbound: Edge | undefined;
    b.onEdge = (e) => { inbound = e; };
    const e = await clock.until(a.createEdge(b.ta), 10);
    t.ok(inbound, `${model}: the far end exists once createEdge resolves`);
    const got: [number, number][] = [];
    inbound!.onPacket = (p) => got.push([p[0]!, clock.now()]);
    const lat = net.latency(a, b);
    t.ok(model === 'lan' ? lat === 0.2 : lat >= 1 && lat <= 1 + 200 * Math.SQRT2 / 2, `${model}: latency ${lat} ms within the model`);
    const sentAt = clock.now();
    e.send(Uint8Array.of(1)); e.send(Uint8Array.of(2));
    await clock.advance(lat / 2);
    t.same(got, [], 'nothing before the latency has passed');
    await clock.advance(lat);
    t.same(got, [[1, sentAt + lat], [2, sentAt + lat]]);
    e.close();
    await clock.advance(lat * 2);
    t.ok(inbound!.closed, 'the close reaches the far end');
    await t.rejects(clock.until(a.createEdge(net.listener().ta), 10), /connection refused/);
  }
});

t.test('seeded loss drops about the configured share, the same packets for the same seed', async (t) => {
  const run = async () => {
    const clock = new VirtualClock();
    const net = new SimNetwork({ clock, random: seededRandom(42), loss: 0.3 });
    const a = net.listener(), b = net.listener();
    await a.start(); await b.start();
    let inbound: Edge | undefined;
    b.onEdge = (e) => { inbound = e; };
    const e = await clock.until(a.createEdge(b.ta), 10);
    const got: number[] = [];
    inbound!.onPacket = (p) => got.push(p[0]! | (p[1]! << 8));
    for (let i = 0; i < 2000; i++) e.send(Uint8Array.of(i & 0xff, i >> 8));
    await clock.advance(500); // above the WAN model's largest one-way latency
    return got;
  };
  const a = await run(), b = await run();
  t.ok(a.length > 1300 && a.length < 1500, `${a.length} of 2000 delivered at 30 % loss`);
  t.same(a, b, 'same seed, same losses');
});

t.test('32 real nodes reach consistency 1.0 in virtual time, the same timeline twice', async (t) => {
  const run = async (security: boolean, seed = 5) => {
    const w = new SimWorld({ nodes: 32, seed, security });
    w.scheduleJoins();
    const timeline: string[] = [];
    for (let i = 0; i < 600 && !w.consistent(); i++) {
      await w.clock.advance(100);
      timeline.push(`${w.clock.now()}:${w.joined}:${w.consistency().toFixed(3)}:${w.packets()}`);
    }
    const { hops, failed } = await w.hops(100, 20);
    return { w, timeline, hops, failed };
  };
  const a = await run(false);
  t.ok(a.w.consistent(), `consistent after ${a.w.clock.now() / 1000} virtual s`);
  t.equal(a.w.startErrors, 0);
  t.equal(a.failed, 0, 'every routed RPC answered');
  t.ok(a.hops.every((h) => h >= 0 && h <= 8), 'hop counts plausible for 32 nodes');
  const b = await run(false);
  t.same(b.timeline, a.timeline, 'same seed: same joins, consistency and packet counts at every sample');
  t.same(b.hops, a.hops, 'same seed: same hop counts');
  const c = await run(false, 6);
  t.ok(c.w.consistent());
  t.not(c.timeline.join(), a.timeline.join(), 'another seed: another trace');
  const s = await run(true);
  t.ok(s.w.consistent(), `with SecureEdgeListener: consistent after ${s.w.clock.now() / 1000} virtual s`);
  t.equal(s.failed, 0);
});
