// npm run sim -- --nodes N [--seed S] [--duration VSECONDS] [--security on|off] [--out DIR]
//                 [--latency lan|wan] [--loss P] [--join-rate NODES_PER_VS] [--nat FRACTION] [--nat-type cone|symmetric]
// --security off runs the null security layer (same packets, no crypto), not no layer.
// The real overlay code on a simulated network in virtual time (bench/sim/world.ts): N nodes
// join through node 0; the run stops at ring consistency 1.0 or after --duration virtual
// seconds; then 1,000 random exact-mode RPCs measure hops and 10 virtual seconds measure the
// steady packet rate. Prints a table, then one line of JSON. Exit 2 on bad arguments.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { svgPlot } from './sim/plot.js';
import { SimWorld } from './sim/world.js';
import type { NatType } from '../src/transport/sim-nat.js';

interface Args { nodes: number; seed: number; duration: number; security: 'on' | 'null'; out?: string; latency: 'lan' | 'wan'; loss: number; joinRate: number; nat: number; natType: NatType }

class UsageError extends Error {}

function parse(argv: string[]): Args {
  const a: Args = { nodes: 0, seed: 1, duration: 600, security: 'on', latency: 'lan', loss: 0, joinRate: 100, nat: 0, natType: 'symmetric' };
  const num = (flag: string, v: string | undefined, min: number, max: number, int = false): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) throw new UsageError(`${flag} needs a ${int ? 'whole ' : ''}number in [${min}, ${max}], got ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!, v = argv[i + 1];
    switch (f) {
      case '--nodes': a.nodes = num(f, v, 1, 10_000_000, true); i++; break;
      case '--seed': a.seed = num(f, v, 0, 2 ** 32 - 1, true); i++; break;
      case '--duration': a.duration = num(f, v, 1, 1e7); i++; break;
      case '--loss': a.loss = num(f, v, 0, 1); i++; break;
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
      default: throw new UsageError(`unknown argument ${f} (usage: npm run sim -- --nodes N [--seed S] [--duration VSECONDS] [--security on|off] [--out DIR] [--latency lan|wan] [--loss P] [--join-rate R] [--nat FRACTION] [--nat-type cone|symmetric])`);
    }
  }
  if (a.nodes === 0) throw new UsageError('--nodes N is required');
  return a;
}

const pct = (xs: number[], p: number) => { const s = [...xs].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN; };
const r2 = (x: number) => Math.round(x * 100) / 100;

async function main(a: Args): Promise<void> {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  const w = new SimWorld({ nodes: a.nodes, seed: a.seed, security: a.security, latency: a.latency, loss: a.loss, joinRate: a.joinRate, nat: a.nat, natType: a.natType });
  const tty = process.stderr.isTTY;
  const sampleMs = a.nodes <= 2000 ? 250 : 1000;
  // The time series is written as it grows, so a long run can be watched (and a killed one kept).
  const csv = a.out ? join(a.out, 'timeseries.csv') : undefined;
  if (csv) { mkdirSync(a.out!, { recursive: true }); writeFileSync(csv, 'virtual_s,joined,consistency,wall_s\n'); }
  let toConsistent: number | null = null;
  let consistency = 0;
  const samples: [number, number, number][] = [];
  w.scheduleJoins();
  const endMs = a.duration * 1000;
  while (w.clock.now() < endMs) {
    await w.clock.run(Math.min(endMs, w.clock.now() + sampleMs));
    consistency = w.consistency();
    const vs = w.clock.now() / 1000, ws = (performance.now() - wall0) / 1000;
    samples.push([vs, w.joined / a.nodes, consistency]);
    if (csv) appendFileSync(csv, `${r2(vs)},${w.joined},${consistency.toFixed(4)},${r2(ws)}\n`);
    if (tty) process.stderr.write(`\rvirtual ${vs.toFixed(1)} s  consistency ${consistency.toFixed(4)}  joined ${w.joined}/${a.nodes}  wall ${ws.toFixed(1)} s `);
    if (consistency === 1 && w.joined === a.nodes) { toConsistent = vs; break; }
  }
  if (tty) process.stderr.write('\n');
  const formWall = (performance.now() - wall0) / 1000;
  const cpuS = () => { const u = process.cpuUsage(cpu0); return r2((u.user + u.system) / 1e6); };
  const formCpu = cpuS();
  const { hops, failed } = await w.hops(1000);
  const p0 = w.packets(), b0 = w.bytes(), t0 = w.clock.now();
  await w.clock.advance(10_000);
  const rate = (w.packets() - p0) / a.nodes / ((w.clock.now() - t0) / 1000);
  const byteRate = (w.bytes() - b0) / a.nodes / ((w.clock.now() - t0) / 1000);
  const rel = w.relayed();
  const conns = w.nodes.reduce((s, n) => s + n.table.size, 0) / a.nodes;
  const result = {
    nodes: a.nodes, seed: a.seed, security: a.security === 'on' ? 'on' : 'off',
    virtual_s_to_consistent: toConsistent, wall_s: r2((performance.now() - wall0) / 1000),
    rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), consistency: r2(w.consistency()),
    hops_mean: r2(hops.reduce((s, h) => s + h, 0) / Math.max(1, hops.length)), hops_p99: pct(hops, 0.99),
    route_success: r2(hops.length / (hops.length + failed)), msgs_per_node_per_s: r2(rate),
    bytes_per_node_per_s: Math.round(byteRate), packets_total: w.packets(), relayed_fraction: r2(rel.relayed / Math.max(1, rel.connections)), nat: a.nat, nat_type: a.natType,
  };
  const rows: [string, string | number][] = [
    ['nodes', a.nodes], ['seed', a.seed], ['security', result.security], ['latency model', a.latency], ['loss', a.loss],
    ['virtual s to consistency 1.0', toConsistent ?? `not within ${a.duration}`], ['wall s / CPU s to that point', `${r2(formWall)} / ${formCpu}`],
    ['wall s in all', result.wall_s], ['CPU s in all', cpuS()], ['RSS MB', result.rss_mb], ['connections per node', r2(conns)],
    ['hops mean / p99 / max', `${result.hops_mean} / ${result.hops_p99} / ${hops.length ? Math.max(...hops) : '-'}`],
    ['routed RPCs answered', `${hops.length} of ${hops.length + failed}`], ['packets per node per virtual s (steady, 10 s)', result.msgs_per_node_per_s],
    ['bytes per node per virtual s (steady, 10 s)', result.bytes_per_node_per_s], ['packets sent in all', result.packets_total],
    ['NAT fraction / type', `${a.nat} / ${a.natType}`], ['relayed connections', `${rel.relayed} of ${rel.connections}`],
    ['timer callbacks run', w.clock.fired], ['callback errors', w.clock.errors], ['node start errors', w.startErrors],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  if (a.out) {
    writeFileSync(join(a.out, 'timeseries.svg'), svgPlot(`${a.nodes} nodes, seed ${a.seed}, security ${result.security}`, 'virtual seconds', [
      { name: 'consistency', color: '#1f77b4', points: samples.map(([x, , c]) => [x, c]) },
      { name: 'nodes joined / N', color: '#ff7f0e', points: samples.map(([x, j]) => [x, j]) },
    ]));
  }
  console.log(JSON.stringify(result));
}

let args: Args;
try { args = parse(process.argv.slice(2)); } catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(`sim: ${e.message}`);
  process.exit(2);
}
main(args).then(() => process.exit(0), (e) => { console.error(`sim: ${(e as Error).stack ?? e}`); process.exit(1); });
