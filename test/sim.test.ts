// The simulator: SimNetwork delivers on the virtual clock with the modelled latency and
// seeded loss; a small overlay of real nodes reaches ring consistency 1.0 in virtual time,
// and the same seed gives the same timeline.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  const run = async (security: 'on' | 'null', seed = 5) => {
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
  const a = await run('null');
  t.ok(a.w.consistent(), `null security layer: consistent after ${a.w.clock.now() / 1000} virtual s`);
  t.equal(a.w.startErrors, 0);
  t.equal(a.failed, 0, 'every routed RPC answered');
  t.ok(a.hops.every((h) => h >= 0 && h <= 8), 'hop counts plausible for 32 nodes');
  const b = await run('null');
  t.same(b.timeline, a.timeline, 'same seed: same joins, consistency and packet counts at every sample');
  t.same(b.hops, a.hops, 'same seed: same hop counts');
  const c = await run('null', 6);
  t.ok(c.w.consistent());
  t.not(c.timeline.join(), a.timeline.join(), 'another seed: another trace');
  const s = await run('on');
  t.ok(s.w.consistent(), `with SecureEdgeListener: consistent after ${s.w.clock.now() / 1000} virtual s`);
  t.equal(s.failed, 0);
});

t.test('npm run sim: bad arguments exit 2 with one line; a run prints a table, a JSON line and a CSV', async (t) => {
  const SIM = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist/bench/sim.js');
  for (const args of [[], ['--nodes', 'ten'], ['--nodes', '8', '--security', 'maybe'], ['--nodes', '8', '--bogus']]) {
    const r = spawnSync(process.execPath, [SIM, ...args], { encoding: 'utf8', timeout: 30_000 });
    t.equal(r.status, 2, `${args.join(' ') || '(none)'}: exit 2`);
    t.match(r.stderr, /^sim: [^\n]+\n$/, 'one line on stderr');
  }
  const out = mkdtempSync(join(tmpdir(), 'sim-'));
  try {
    const r = spawnSync(process.execPath, [SIM, '--nodes', '8', '--seed', '3', '--security', 'off', '--out', out], { encoding: 'utf8', timeout: 120_000 });
    t.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const j = JSON.parse(lines.at(-1)!);
    t.same(Object.keys(j), ['nodes', 'seed', 'security', 'virtual_s_to_consistent', 'wall_s', 'rss_mb', 'consistency', 'hops_mean', 'hops_p99', 'route_success', 'msgs_per_node_per_s',
      'bytes_per_node_per_s', 'packets_total', 'relayed_fraction', 'nat', 'nat_type']);
    t.match(j, { nodes: 8, seed: 3, security: 'off', consistency: 1, route_success: 1 });
    t.ok(j.virtual_s_to_consistent > 0, 'time to consistency reported');
    t.ok(lines.some((l) => l.startsWith('hops mean / p99 / max')), 'the table');
    const csv = readFileSync(join(out, 'timeseries.csv'), 'utf8').trim().split('\n');
    t.equal(csv[0], 'virtual_s,joined,consistency,wall_s');
    t.match(csv.at(-1)!, /^[\d.]+,8,1\.0000,/, 'the last sample: all 8 joined, consistent');
    t.match(readFileSync(join(out, 'timeseries.svg'), 'utf8'), /^<svg [^]*<polyline [^]*<\/svg>\n$/, 'and its plot');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
