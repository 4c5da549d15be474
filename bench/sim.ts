// npm run sim -- --nodes N [--seed S] [--churn LIFETIME] [--duration VSECONDS] [--dht-keys K]
//                 [--security on|off] [--out DIR] [--latency lan|wan] [--loss P] [--join-rate NODES_PER_VS]
//                 [--link-timeout S] [--nat FRACTION] [--nat-type cone|symmetric]
// --security off runs the null security layer (same packets, no crypto), not no layer.
// The real overlay code on a simulated network in virtual time (bench/sim/world.ts): N nodes
// join through node 0 until the ring is first consistent (1.0).
// - Without --churn the run stops there (or after --duration virtual s, default 600); then
//   1,000 random exact-mode RPCs measure hops and 10 virtual seconds the steady packet rate.
// - With --churn L (mean lifetime, virtual s) it goes on until --duration (default 7200) in
//   all: nodes crash and join (sim/churn.ts), 20 routed RPCs per virtual s and a DHT read
//   round every 30 virtual s measure the overlay (sim/metrics.ts). Churn starts at the first
//   consistency, or at half the duration if the ring is not consistent by then (the table says so).
// --dht-keys K: at that point K owner nodes (exempt from churn) register one key each.
// Writes timeseries.csv, timeseries.svg and rates.svg into --out. Prints a table, then one
// line of JSON. Exit 2 on bad arguments.
import { Churn } from './sim/churn.js';
import { DhtWatch, meanOf, RouteProbe, successOf } from './sim/metrics.js';
import { TimeSeries } from './sim/series.js';
import { SimWorld } from './sim/world.js';
import type { NatType } from '../src/transport/sim-nat.js';
import { DEFAULT_LINK_OPTIONS } from '../src/connection/link-manager.js';
import type { Node } from '../src/node/node.js';
import { seededRandom } from '../src/util/random.js';
import { numberArg, UsageError } from './sim/args.js';

interface Args {
  nodes: number; seed: number; duration?: number; security: 'on' | 'null'; out?: string; latency: 'lan' | 'wan'; loss: number; joinRate: number;
  churn?: number; dhtKeys: number; linkTimeout?: number; nat: number; natType: NatType;
}

function parse(argv: string[]): Args {
  const a: Args = { nodes: 0, seed: 1, security: 'on', latency: 'lan', loss: 0, joinRate: 1000, dhtKeys: 0, nat: 0, natType: 'symmetric' };
  const num = (flag: string, v: string | undefined, min: number, max: number, int = false): number => numberArg(flag, v, min, max, int);
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!, v = argv[i + 1];
    switch (f) {
      case '--nodes': a.nodes = num(f, v, 1, 10_000_000, true); i++; break;
      case '--seed': a.seed = num(f, v, 0, 2 ** 32 - 1, true); i++; break;
      case '--duration': a.duration = num(f, v, 1, 1e7); i++; break;
      case '--churn': a.churn = num(f, v, 1, 1e7); i++; break;
      case '--dht-keys': a.dhtKeys = num(f, v, 0, 100_000, true); i++; break;
      case '--loss': a.loss = num(f, v, 0, 1); i++; break;
      case '--link-timeout': a.linkTimeout = num(f, v, 0.1, 3600); i++; break;
      case '--join-rate': a.joinRate = num(f, v, 0.001, 1e6); i++; break;
      case '--security':
        if (v !== 'on' && v !== 'off') throw new UsageError(`--security needs on or off, got ${v ?? 'nothing'}`);
        a.security = v === 'on' ? 'on' : 'null'; i++; break;
      case '--nat': a.nat = num(f, v, 0, 1); i++; break;
      case '--nat-type':
        if (v !== 'cone' && v !== 'symmetric') throw new UsageError(`--nat-type needs cone or symmetric, got ${v ?? 'nothing'}`);
        a.natType = v; i++; break;
      case '--latency':
        if (v !== 'lan' && v !== 'wan') throw new UsageError(`--latency needs lan or wan, got ${v ?? 'nothing'}`);
        a.latency = v; i++; break;
      case '--out':
        if (!v) throw new UsageError('--out needs a directory');
        a.out = v; i++; break;
      default: throw new UsageError(`unknown argument ${f} (usage: npm run sim -- --nodes N [--seed S] [--churn LIFETIME] [--duration VSECONDS] [--dht-keys K] [--security on|off] [--out DIR] [--latency lan|wan] [--loss P] [--join-rate R] [--link-timeout S] [--nat FRACTION] [--nat-type cone|symmetric])`);
    }
  }
  if (a.nodes === 0) throw new UsageError('--nodes N is required');
  if (a.dhtKeys > a.nodes) throw new UsageError(`--dht-keys ${a.dhtKeys} needs at least as many nodes (one owner per key), got --nodes ${a.nodes}`);
  return a;
}

const pct = (xs: number[], p: number) => { const s = [...xs].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN; };
const r2 = (x: number) => Math.round(x * 100) / 100;
const r4 = (x: number) => (Number.isFinite(x) ? Math.round(x * 10_000) / 10_000 : null);

const DHT_ROUND_MS = 30_000;
const PROBES_PER_S = 20;

async function main(a: Args): Promise<void> {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  const duration = a.duration ?? (a.churn ? 7200 : 600);
  const w = new SimWorld({ nodes: a.nodes, seed: a.seed, security: a.security, latency: a.latency, loss: a.loss, joinRate: a.joinRate, nat: a.nat, natType: a.natType, dht: a.dhtKeys > 0,
    // A connection silent for --link-timeout s is closed (pinged after a third of it); default the shipped 30 s.
    node: a.linkTimeout ? { link: { ...DEFAULT_LINK_OPTIONS, pingAfterMs: a.linkTimeout * 1000 / 3, timeoutMs: a.linkTimeout * 1000 } } : undefined });
  // Separate seeded streams, so adding a measurement does not move the churn's draws.
  const churnRnd = seededRandom((a.seed ^ 0x6368726e) >>> 0), probeRnd = seededRandom((a.seed ^ 0x70726f62) >>> 0), dhtRnd = seededRandom((a.seed ^ 0x64687421) >>> 0);
  const tty = process.stderr.isTTY;
  const series = new TimeSeries(a.out);
  const probe = new RouteProbe(w, probeRnd, PROBES_PER_S);
  const watch = new DhtWatch(w, dhtRnd);
  let last = { t: 0, ...w.traffic() };
  const sample = () => {
    const live = w.live, consistency = live.length ? w.consistency() : 0;
    for (const n of live) w.hasJoined(n);
    const vs = w.clock.now() / 1000, ws = (performance.now() - wall0) / 1000;
    const tr = w.traffic(), dt = (w.clock.now() - last.t) / 1000;
    const win = probe.window();
    series.add({
      virtual_s: vs, live: live.length, joins_total: w.joined + w.spawned, deaths_total: w.deaths, consistency,
      route_success: successOf(win), hops_mean: meanOf(win.hops), dht_availability: watch.availability,
      msgs_per_node_per_s: dt > 0 && live.length ? (tr.packets - last.packets) / live.length / dt : NaN,
      bytes_per_node_per_s: dt > 0 && live.length ? (tr.bytes - last.bytes) / live.length / dt : NaN, wall_s: ws,
    });
    last = { t: w.clock.now(), ...tr };
    if (tty) process.stderr.write(`\rvirtual ${vs.toFixed(1)} s  consistency ${consistency.toFixed(4)}  live ${live.length}  joined ${w.joined + w.spawned}  dead ${w.deaths}  wall ${ws.toFixed(1)} s `);
    return consistency;
  };

  // Formation: until the ring is first consistent (with churn: at most half the run).
  let toConsistent: number | null = null;
  w.scheduleJoins();
  const formMs = (a.churn ? duration / 2 : duration) * 1000;
  const formSample = a.nodes <= 2000 ? 250 : 1000;
  while (w.clock.now() < formMs) {
    await w.clock.run(Math.min(formMs, w.clock.now() + formSample));
    if (sample() === 1 && w.joined === a.nodes) { toConsistent = w.clock.now() / 1000; break; }
  }
  const formWall = (performance.now() - wall0) / 1000;
  const cpuS = () => { const u = process.cpuUsage(cpu0); return r2((u.user + u.system) / 1e6); };
  const formCpu = cpuS();

  // The DHT keys: one per owner, K distinct live owners.
  const owners = new Set<Node>();
  for (let i = 0; owners.size < a.dhtKeys && i < 100 * a.dhtKeys; i++) { const n = w.pickLive(dhtRnd); if (n) owners.add(n); }
  if (a.dhtKeys > 0) await w.clock.until(watch.place(a.dhtKeys, [...owners]), 120_000, 100).catch(() => {});

  let hops: number[], failed: number, rate: number, bytesRate: number, churnAt: number | null = null;
  if (a.churn) {
    churnAt = w.clock.now() / 1000;
    const churn = new Churn(w, { lifetimeS: a.churn, nodes: a.nodes, random: churnRnd, exempt: owners });
    const t0 = { t: w.clock.now(), ...w.traffic() };
    let liveSeconds = 0;
    churn.start(); probe.start(); watch.start(DHT_ROUND_MS);
    const step = Math.min(10_000, Math.max(1000, duration * 5));
    const endMs = duration * 1000;
    while (w.clock.now() < endMs) {
      const before = w.clock.now();
      await w.clock.run(Math.min(endMs, before + step));
      sample();
      liveSeconds += series.rows.at(-1)!.live * (w.clock.now() - before) / 1000;
    }
    churn.stop(); probe.stop(); watch.stop();
    const tr = w.traffic();
    hops = probe.total.hops; failed = probe.total.failed;
    rate = (tr.packets - t0.packets) / Math.max(1e-9, liveSeconds);
    bytesRate = (tr.bytes - t0.bytes) / Math.max(1e-9, liveSeconds);
  } else {
    ({ hops, failed } = await w.hops(1000));
    if (a.dhtKeys > 0) { await w.clock.until(watch.round(), 120_000, 100); await w.clock.until(watch.round(), 120_000, 100); }
    const p0 = { t: w.clock.now(), ...w.traffic() };
    await w.clock.advance(10_000);
    const tr = w.traffic(), s = (w.clock.now() - p0.t) / 1000;
    rate = (tr.packets - p0.packets) / a.nodes / s;
    bytesRate = (tr.bytes - p0.bytes) / a.nodes / s;
  }
  if (tty) process.stderr.write('\n');
  const live = w.live;
  const conns = live.reduce((s, n) => s + n.table.size, 0) / Math.max(1, live.length);
  const rel = w.relayed();
  const result = {
    nodes: a.nodes, seed: a.seed, security: a.security === 'on' ? 'on' : 'off',
    virtual_s_to_consistent: toConsistent, wall_s: r2((performance.now() - wall0) / 1000),
    rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), consistency: r4(w.consistency()),
    hops_mean: r2(meanOf(hops)), hops_p99: pct(hops, 0.99), route_success: r4(hops.length / (hops.length + failed)),
    dht_keys: watch.placed, dht_lost: watch.lost, msgs_per_node_per_s: r2(rate),
    bytes_per_node_per_s: r2(bytesRate), churn_lifetime_s: a.churn ?? null,
    packets_total: w.traffic().packets, relayed_fraction: r2(rel.relayed / Math.max(1, rel.connections)), nat: a.nat, nat_type: a.natType,
  };
  const rows = series.rows.filter((r) => churnAt !== null && r.virtual_s > churnAt);
  const minOf = (f: (r: typeof rows[number]) => number) => { const xs = rows.map(f).filter(Number.isFinite); return xs.length ? r4(Math.min(...xs)) : '-'; };
  const table: [string, string | number][] = [
    ['nodes', a.nodes], ['seed', a.seed], ['security', result.security], ['latency model', a.latency], ['loss', a.loss], ['link timeout s', a.linkTimeout ?? DEFAULT_LINK_OPTIONS.timeoutMs / 1000],
    ['virtual s to consistency 1.0', toConsistent ?? `not within ${formMs / 1000}`], ['wall s / CPU s to that point', `${r2(formWall)} / ${formCpu}`],
    ...(a.churn ? [
      ['churn: mean lifetime virtual s', a.churn], ['churn: started at virtual s', `${churnAt}${toConsistent === null ? ' (ring never consistent)' : ''}`],
      ['churn: joins / deaths', `${w.spawned} / ${w.deaths}`], ['churn: live at end (N)', `${live.length} (${a.nodes})`],
      ['consistency min (sampled) / at end', `${minOf((r) => r.consistency)} / ${result.consistency}`],
      ['routing success lowest window', minOf((r) => r.route_success)],
      ['routed RPCs voided (an end crashed)', probe.voided],
    ] as [string, string | number][] : []),
    ['wall s in all', result.wall_s], ['CPU s in all', cpuS()], ['RSS MB', result.rss_mb], ['connections per node', r2(conns)],
    ['hops mean / p99 / max', `${result.hops_mean} / ${result.hops_p99} / ${hops.length ? hops.reduce((m, h) => Math.max(m, h)) : '-'}`],
    ['routed RPCs answered', `${hops.length} of ${hops.length + failed}`],
    ...(a.dhtKeys > 0 ? [
      ['DHT keys placed / lost / not placed', `${watch.placed} / ${watch.lost} / ${watch.unplaced}`],
      ['DHT read rounds / last availability', `${watch.rounds} / ${r4(watch.availability)}`],
    ] as [string, string | number][] : []),
    [`packets per node per virtual s (${a.churn ? 'churn phase' : 'steady, 10 s'})`, result.msgs_per_node_per_s],
    [`bytes per node per virtual s (${a.churn ? 'churn phase' : 'steady, 10 s'})`, result.bytes_per_node_per_s],
    ['packets sent in all', result.packets_total], ['NAT fraction / type', `${a.nat} / ${a.natType}`], ['relayed connections', `${rel.relayed} of ${rel.connections}`],
    ['timer callbacks run', w.clock.fired], ['callback errors', w.clock.errors], ['node start errors', w.startErrors],
  ];
  const width = Math.max(...table.map((r) => r[0].length));
  for (const [k, v] of table) console.log(`${k.padEnd(width)}  ${v}`);
  series.plot(`${a.nodes} nodes, seed ${a.seed}, security ${result.security}${a.churn ? `, churn ${a.churn} s` : ''}`, a.nodes, churnAt === null ? 0 : churnAt + 1);
  console.log(JSON.stringify(result));
}

let args: Args;
try { args = parse(process.argv.slice(2)); } catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(`sim: ${e.message}`);
  process.exit(2);
}
main(args).then(() => process.exit(0), (e) => { console.error(`sim: ${(e as Error).stack ?? e}`); process.exit(1); });
