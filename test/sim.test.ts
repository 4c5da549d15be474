// The simulator: SimNetwork delivers on the virtual clock with the modelled latency and
// seeded loss; a small overlay of real nodes reaches ring consistency 1.0 in virtual time,
// and the same seed gives the same timeline; under churn, crashed nodes are really gone, the
// live count stays near N, and the routing and DHT measurements are the same for one seed.
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
import { Churn } from '../bench/sim/churn.js';
import { DhtWatch, RouteProbe } from '../bench/sim/metrics.js';
import type { Node } from '../src/node/node.js';
import type { Edge } from '../src/transport/edge.js';

const KEYS = ['nodes', 'seed', 'security', 'virtual_s_to_consistent', 'wall_s', 'rss_mb', 'consistency', 'hops_mean', 'hops_p99', 'route_success', 'dht_keys', 'dht_lost', 'msgs_per_node_per_s'];
const EXTRA = ['packets_total', 'relayed_fraction', 'nat', 'nat_type'];
const COLUMNS = 'virtual_s,live,joins_total,deaths_total,consistency,route_success,hops_mean,dht_availability,msgs_per_node_per_s,bytes_per_node_per_s,wall_s';

t.test('past 65,535 listeners the network goes on to a second host, reachable like the first', async (t) => {
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: seededRandom(9), latency: 'wan' });
  const first = net.listener();
  let last = first;
  for (let i = 1; i < 65_536; i++) last = net.listener();
  t.equal(first.ta.toString(), 'brunet.function://sim:1');
  t.equal(last.ta.toString(), 'brunet.function://sim2:1', 'listener 65,536 is port 1 of host sim2');
  const nat = net.natListener('cone');
  t.equal(nat.inner.ta.toString(), 'brunet.function://sim2:2');
  t.equal(nat.privateTA.host, '10.0.2.3', 'a private TA on the second host differs from the first host\'s 10.0.2.2');
  await first.start(); await last.start();
  let inbound: Edge | undefined;
  last.onEdge = (e) => { inbound = e; };
  const e = await clock.until(first.createEdge(last.ta), 10);
  const got: number[] = [];
  inbound!.onPacket = (p) => got.push(p[0]!);
  e.send(Uint8Array.of(7));
  await clock.advance(400);
  t.same(got, [7], 'delivered across hosts, after a latency from the model');
  t.ok(net.latency(first, last) >= 1);
  await t.rejects(clock.until(first.createEdge(nat.privateTA), 10), /connection refused/, 'a private TA is still refused');
});

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
      timeline.push(`${w.clock.now()}:${w.joined}:${w.consistency().toFixed(3)}:${w.traffic().packets}`);
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
    t.same(Object.keys(j), [...KEYS, 'bytes_per_node_per_s', 'churn_lifetime_s', ...EXTRA]);
    t.match(j, { nodes: 8, seed: 3, security: 'off', consistency: 1, route_success: 1, dht_keys: 0, dht_lost: 0, churn_lifetime_s: null });
    t.ok(j.virtual_s_to_consistent > 0, 'time to consistency reported');
    t.ok(lines.some((l) => l.startsWith('hops mean / p99 / max')), 'the table');
    const csv = readFileSync(join(out, 'timeseries.csv'), 'utf8').trim().split('\n');
    t.equal(csv[0], COLUMNS);
    t.match(csv.at(-1)!, /^[\d.]+,8,8,0,1\.0000,/, 'the last sample: all 8 joined, none dead, consistent');
    t.match(readFileSync(join(out, 'timeseries.svg'), 'utf8'), /^<svg [^]*<polyline [^]*<\/svg>\n$/, 'and its plot');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const out2 = mkdtempSync(join(tmpdir(), 'sim-churn-'));
  try {
    const r = spawnSync(process.execPath, [SIM, '--nodes', '12', '--seed', '4', '--security', 'off', '--churn', '60', '--duration', '90', '--dht-keys', '3', '--out', out2], { encoding: 'utf8', timeout: 180_000 });
    t.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const j = JSON.parse(lines.at(-1)!);
    t.same(Object.keys(j), [...KEYS, 'bytes_per_node_per_s', 'churn_lifetime_s', ...EXTRA]);
    t.match(j, { nodes: 12, dht_keys: 3, churn_lifetime_s: 60 });
    t.ok(j.dht_lost >= 0 && j.dht_lost <= 3, `dht_lost ${j.dht_lost} of 3`);
    t.ok(j.route_success > 0 && j.route_success <= 1 && j.msgs_per_node_per_s > 0 && j.bytes_per_node_per_s > 0, 'routing and traffic measured');
    t.ok(lines.some((l) => /^churn: joins \/ deaths +\d+ \/ \d+$/.test(l)), 'the table has the churn rows');
    const csv = readFileSync(join(out2, 'timeseries.csv'), 'utf8').trim().split('\n');
    t.equal(csv[0], COLUMNS);
    const last = csv.at(-1)!.split(',');
    t.equal(last[0], '90', 'the series runs to --duration');
    t.ok(Number(last[3]) > 0, `${last[3]} deaths by the end`);
    t.match(last[7], /^[01]\.\d{4}$/, 'DHT availability sampled');
    t.match(readFileSync(join(out2, 'rates.svg'), 'utf8'), /<polyline [^]*KB \/ node \/ s/, 'the rates plot');
  } finally {
    rmSync(out2, { recursive: true, force: true });
  }
});

t.test('a crashed node is gone: nothing reaches it, it sends nothing, the survivors drop it and heal', async (t) => {
  const w = new SimWorld({ nodes: 12, seed: 9, security: 'none' });
  w.scheduleJoins();
  for (let i = 0; i < 600 && !w.consistent(); i++) await w.clock.advance(100);
  t.ok(w.consistent(), 'formed');
  const victim = w.nodes[5]!, inner = w.inner[5]!;
  const hasVictim = () => w.live.filter((n) => n.table.get(victim.address) !== undefined).length;
  const peers = hasVictim();
  t.ok(peers > 0, `${peers} nodes connected to it`);
  w.crash(victim);
  t.notOk(w.isAlive(victim));
  t.equal(w.live.length, 11);
  t.notOk(w.live.includes(victim));
  const st = { ...inner.stats };
  await w.clock.advance(10);
  t.equal(hasVictim(), peers, 'no goodbye: the peers still hold their connections right after the crash');
  const sentBefore = w.traffic().packets;
  await w.clock.advance(120_000);
  t.ok(w.traffic().packets > sentBefore, 'the survivors kept sending (pings to it among them)');
  t.equal(inner.stats.packetsIn, st.packetsIn, 'no packet delivered to the crashed node');
  t.equal(inner.stats.packetsOut, st.packetsOut, 'and none sent by it');
  t.equal(hasVictim(), 0, 'every survivor dropped its connection once its pings timed out');
  t.equal(w.consistency(), 1, 'the survivors\' ring is whole again');
  await t.rejects(w.clock.until(w.nodes[0]!.listeners[0]!.createEdge(inner.ta), 100), /connection refused/, 'a connect to it is refused');
});

t.test('a churned world: live count near N, DHT keys counted, the same timeline twice for one seed', async (t) => {
  const N = 24;
  const run = async (seed: number) => {
    const w = new SimWorld({ nodes: N, seed, security: 'none', dht: true });
    w.scheduleJoins();
    for (let i = 0; i < 600 && !w.consistent(); i++) await w.clock.advance(100);
    const rnd = seededRandom(seed + 1000);
    const owners: Node[] = [];
    while (owners.length < 4) { const n = w.pickLive(rnd)!; if (!owners.includes(n)) owners.push(n); }
    const watch = new DhtWatch(w, rnd);
    await w.clock.until(watch.place(4, owners), 60_000);
    const churn = new Churn(w, { lifetimeS: 60, nodes: N, random: rnd, exempt: new Set(owners) });
    const probe = new RouteProbe(w, rnd, 20);
    churn.start(); probe.start(); watch.start(15_000);
    const timeline: string[] = [], lives: number[] = [];
    for (let s = 0; s < 16; s++) {
      await w.clock.advance(5000);
      lives.push(w.live.length);
      const p = probe.window();
      timeline.push(`${w.clock.now()}:${w.live.length}:${w.spawned}:${w.deaths}:${w.consistency().toFixed(3)}:${w.traffic().packets}:${p.ok}/${p.failed}:${p.hops.join('.')}:${watch.rounds}:${watch.availability}`);
    }
    churn.stop(); probe.stop(); watch.stop();
    return { w, timeline, lives, watch, owners, probe };
  };
  const a = await run(11);
  t.ok(a.w.deaths >= 12 && a.w.spawned >= 12, `churn happened: ${a.w.spawned} joined, ${a.w.deaths} crashed in 80 virtual s`);
  t.ok(a.lives.every((n) => n >= N / 2 && n <= N * 1.75), `live count stays near ${N}: ${a.lives.join(' ')}`);
  t.ok(a.owners.every((o) => a.w.isAlive(o)), 'the key owners are exempt from churn');
  t.equal(a.watch.placed + a.watch.unplaced, 4);
  t.equal(a.watch.placed, 4, 'all four keys placed');
  t.ok(a.watch.rounds >= 4, `${a.watch.rounds} read rounds`);
  t.ok(a.watch.lost >= 0 && a.watch.lost <= a.watch.placed, `${a.watch.lost} lost`);
  t.ok(a.probe.total.ok > 800, `${a.probe.total.ok} routed RPCs answered, ${a.probe.total.failed} not, ${a.probe.voided} voided`);
  const b = await run(11);
  t.same(b.timeline, a.timeline, 'same seed: same joins, crashes, consistency, traffic, probes and DHT rounds at every sample');
});
