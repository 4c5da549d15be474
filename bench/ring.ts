// npm run bench:ring — overlay formation and steady state for N = 16, 64, 256, 1000 nodes in
// one process on loopback UDP (each N in a fresh child process, so RSS figures are clean).
// Prints one table row per N: time to consistency 1.0, extra RSS and live heap per node, CPU seconds,
// mean/max hops of 1,000 random routed RPCs, idle bytes/s per node, crawl time, and the CPU
// of one GET /metrics (median of 10, a second apart; at one scrape a second, ms/1000 of a core).
// BENCH_TRANSPORT=memory runs the nodes on the in-memory transport instead, in this same event
// loop; BENCH_IO_PROFILE=1 profiles the formation and reports the CPU the UDP path took in it
// (bench:sim-validate's in-place measures of what the UDP path costs per packet).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { get } from 'node:http';
import { OverlayMetrics } from '../src/control/metrics.js';
import { ControlServer } from '../src/control/server.js';
import { Node } from '../src/node/node.js';
import { Mode } from '../src/routing/ah-wire.js';
import type { EdgeListener, TransportStats } from '../src/transport/edge.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import { realClock } from '../src/util/clock.js';
import { progress } from '../src/util/progress.js';
import { cryptoRandom } from '../src/util/random.js';
import { crawl } from '../tools/crawl-lib.js';
import { consistent } from './ring-check.js';
import { countMemory, countUdp, MsgCounts } from './sim/msg-types.js';
import { profileUdpPath } from './sim/processor.js';

/** CPU seconds of the main thread alone (the event loop, without GC helper threads), Linux; NaN elsewhere. */
function mainThreadCpu(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch { return NaN; }
}

/** Seconds the main thread has waited, runnable, for a core (another process had it), Linux; NaN elsewhere. */
function mainThreadWait(): number {
  try { return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9; } catch { return NaN; }
}

/** The host's UDP datagrams dropped at full receive buffers so far (RcvbufErrors: every process's), Linux; NaN elsewhere. */
function rcvbufErrors(): number {
  try {
    const [names, values] = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:')).map((l) => l.split(' '));
    return Number(values![names!.indexOf('RcvbufErrors')]);
  } catch { return NaN; }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function traffic(nodes: Node[]): { bytes: number; packets: number; received: number } {
  let bytes = 0, packets = 0, received = 0;
  for (const n of nodes) for (const l of n.listeners) { const s = (l as EdgeListener & { stats: TransportStats }).stats; bytes += s.bytesOut; packets += s.packetsOut; received += s.packetsIn; }
  return { bytes, packets, received };
}

async function one(N: number): Promise<Record<string, number | string>> {
  gc(); await sleep(200); gc();
  const { rss: rss0, heapUsed: heap0 } = process.memoryUsage();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const wait0 = mainThreadWait();
  const drops0 = rcvbufErrors();
  const t0 = performance.now();
  const nodes: Node[] = [];
  // BENCH_MSG_TYPES=1 (bench:sim-validate): the packets sent until consistency, by message type.
  const types = process.env.BENCH_MSG_TYPES === '1' ? new MsgCounts() : undefined;
  // BENCH_TRANSPORT=memory: the same nodes on the in-memory transport, each packet delivered on
  // the next turn of this event loop (setImmediate).
  const memNet = process.env.BENCH_TRANSPORT === 'memory' ? new MemoryNetwork() : undefined;
  if (types) { if (memNet) countMemory(memNet, types); else countUdp(types); }
  // BENCH_IO_PROFILE=1 (bench:sim-validate): the UDP path's CPU while forming, profiled in place.
  const ioProfile = process.env.BENCH_IO_PROFILE === '1' && !memNet ? await profileUdpPath() : undefined;
  const bar = progress();
  for (let i = 0; i < N; i++) {
    bar.update(`ring of ${N}: starting node ${i + 1}`);
    const l = memNet ? memNet.listener() : new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom });
    const node = new Node({ namespace: 'bench', listeners: [l], remoteTAs: i === 0 ? [] : nodes[0]!.info().tas, type: 'MultiNode' });
    node.rpc.register('bench.Hops', (_a, ctx) => ctx.hops);
    await node.start();
    nodes.push(node);
  }
  const startedSec = (performance.now() - t0) / 1000;
  let formed = false;
  while (performance.now() - t0 < 180_000) {
    if (consistent(nodes)) { formed = true; break; }
    bar.update(`ring of ${N}: forming, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    await sleep(100);
  }
  const formSec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSec = (cpu.user + cpu.system) / 1e6;
  const { packets: formPackets, received: formReceived } = traffic(nodes);
  const ioMs = await ioProfile?.stop();
  const formTypes = types?.snapshot();
  const mainSec = mainThreadCpu() - main0;
  const waitSec = mainThreadWait() - wait0;
  const drops = rcvbufErrors() - drops0;

  // 1,000 random routed RPCs (exact mode), 50 in flight.
  const hops: number[] = [];
  let failed = 0;
  const pairs = Array.from({ length: 1000 }, () => [nodes[cryptoRandom.int(N)]!, nodes[cryptoRandom.int(N)]!] as const);
  for (let i = 0; i < pairs.length; i += 50) {
    bar.update(`ring of ${N}: routed RPCs ${i}/${pairs.length}`);
    await Promise.all(pairs.slice(i, i + 50).map(([a, b]) => a.rpc.call({ address: b.address, mode: Mode.Exact }, 'bench.Hops', [], { timeoutMs: 5000 })
      .then((h) => { hops.push(h as number); }, () => { failed++; })));
  }
  const meanHops = hops.reduce((s, h) => s + h, 0) / Math.max(1, hops.length);

  // Idle traffic: let leaf decay and trimming settle (about a minute), then count what leaves the sockets for 10 s
  // (payload plus 28 bytes of IPv4/UDP header per datagram).
  const settle = Number(process.env.BENCH_SETTLE_MS ?? 60_000), s0 = performance.now();
  while (performance.now() - s0 < settle) {
    bar.update(`ring of ${N}: settling, ${Math.ceil((settle - (performance.now() - s0)) / 1000)} s left`);
    await sleep(Math.min(1000, settle - (performance.now() - s0)));
  }
  bar.update(`ring of ${N}: measuring idle traffic for 10 s`);
  const a = traffic(nodes);
  await sleep(10_000);
  const b = traffic(nodes);
  const idle = ((b.bytes - a.bytes) + 28 * (b.packets - a.packets)) / 10 / N;

  gc(); await sleep(200); gc();
  const mem = process.memoryUsage();
  const rssPerNode = (mem.rss - rss0) / N / 1024;
  // Live V8 heap after a full collection: what the nodes hold, without the collector's slack.
  const heapPerNode = (mem.heapUsed - heap0) / N / 1024;
  const conns = nodes.reduce((s, n) => s + n.table.size, 0) / N;

  const port = 20000 + cryptoRandom.int(20000);
  const cs = new ControlServer(nodes, port);
  cs.metrics = new OverlayMetrics(nodes);
  await cs.start();
  // GET /metrics once a second for 10 s. The CPU figure is that of building the exposition
  // (render(), which runs without yielding to the nodes' timers); on a busy machine the
  // process CPU over a whole HTTP exchange would mostly be the nodes' own work meanwhile.
  const scrapeCpu: number[] = [];
  let scrapeBytes = 0;
  for (let i = 0; i < 10; i++) {
    bar.update(`ring of ${N}: /metrics scrape ${i + 1}/10`);
    const c0 = process.cpuUsage();
    scrapeBytes = (await cs.metrics.render()).length;
    const c = process.cpuUsage(c0);
    scrapeCpu.push((c.user + c.system) / 1000);
    await new Promise<void>((resolve, reject) => get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`/metrics: HTTP ${res.statusCode}`));
      res.resume(); res.on('end', resolve);
    }).on('error', reject));
    await sleep(1000);
  }
  scrapeCpu.sort((x, y) => x - y);
  const c = await crawl({ port, onProgress: (f, q) => bar.update(`ring of ${N}: crawled ${f} nodes, ${q} pending`) });
  bar.done();
  await cs.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  return {
    N, formed: formed ? 'yes' : 'NO', 'consistent after s': +formSec.toFixed(2), 'CPU s': +cpuSec.toFixed(2),
    'RSS KB/node': Math.round(rssPerNode), 'heap KB/node': Math.round(heapPerNode), 'conns/node': +conns.toFixed(1), 'mean hops': +meanHops.toFixed(2), 'max hops': Math.max(...hops),
    'failed RPCs': failed, 'idle B/s/node': Math.round(idle), 'crawl s': c.stats['Crawl took'], 'crawl nodes': c.stats['Total Nodes'],
    'crawl consistency': c.stats.Consistency,
    // For bench/sim-validate.ts: the join schedule and the CPU cost per packet during formation.
    'started after s': +startedSec.toFixed(3), 'packets to consistency': formPackets,
    'main-thread CPU s': +mainSec.toFixed(2), 'main-thread wait s': +waitSec.toFixed(3),
    'host UDP receive-buffer drops to consistency': drops,
    ...(formTypes ? { 'packets by type to consistency': JSON.stringify(formTypes) } : {}),
    ...(ioMs !== undefined ? { 'UDP path CPU ms to consistency (profiled)': +ioMs.toFixed(1), 'packets received to consistency': formReceived } : {}),
    '/metrics CPU ms per scrape': +scrapeCpu[5]!.toFixed(2), '/metrics KB': +(scrapeBytes / 1024).toFixed(1),
  };
}

async function main(): Promise<void> {
  const arg = process.argv.indexOf('--one');
  if (arg > 0) {
    const r = await one(Number(process.argv[arg + 1]));
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  }
  const sizes = (process.env.BENCH_SIZES ?? '16,64,256,1000').split(',').map(Number);
  const rows: Record<string, number | string>[] = [];
  for (const n of sizes) {
    process.stderr.write(`ring of ${n}...\n`);
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--one', String(n)], { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'inherit'] });
    const row = JSON.parse(out.trim().split('\n').pop()!);
    rows.push(row);
    process.stderr.write(JSON.stringify(row) + '\n');
  }
  // Marginal memory: extra RSS between consecutive sizes divided by the added nodes, which
  // removes the fixed cost (V8 heap reservations) that dominates small N.
  rows.forEach((r, i) => {
    const p = rows[i - 1];
    r['marginal RSS KB/added node'] = p ? Math.round(((r['RSS KB/node'] as number) * (r.N as number) - (p['RSS KB/node'] as number) * (p.N as number)) / ((r.N as number) - (p.N as number))) : '-';
  });
  const keys = Object.keys(rows[0]!);
  console.log(`| ${keys.join(' | ')} |`);
  console.log(`| ${keys.map(() => '---').join(' | ')} |`);
  for (const r of rows) console.log(`| ${keys.map((k) => r[k]).join(' | ')} |`);
}

main().catch((e) => { console.error(e); process.exit(1); });
