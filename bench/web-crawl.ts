// node dist/bench/web-crawl.js — what one web-view crawl of an N-node process costs: N nodes on
// loopback UDP (as bench:web), once the ring is consistent and settled, K crawls of the server's
// RingCrawl back to back (the first a full one, as "crawl now"; the others periodic: a third of
// the nodes asked), each with its wall time, the nodes asked, the process's CPU seconds beyond
// its idle rate (measured over 5 s before), and the GC pacer's collections. BENCH_CRAWL_PROFILE=dir writes a V8 CPU profile of each crawl there (for
// finding where a crawl's time goes).
//   BENCH_WEB_NODES (1000), BENCH_CRAWLS (3), BENCH_SETTLE_MS (30000),
//   BENCH_WEB_TRANSPORT (udp, or memory: in-process delivery, lighter on a loaded machine)
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { RingCrawl } from '../src/control/web/ring-crawl.js';
import { gcPaceStats } from '../src/util/gc-pacer.js';
import { startWebRing } from './web-ring.js';

const N = Number(process.env.BENCH_WEB_NODES ?? 1000);
const CRAWLS = Number(process.env.BENCH_CRAWLS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const PROFILE_DIR = process.env.BENCH_CRAWL_PROFILE;
const TRANSPORT = process.env.BENCH_WEB_TRANSPORT ?? 'udp';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tty = process.stderr.isTTY;
const progress = (s: string) => { if (tty) process.stderr.write(`\r\x1b[K${s}`); };

async function main(): Promise<void> {
  const { nodes, dhts, formedS } = await startWebRing(N, TRANSPORT, progress);
  console.log(`${N} nodes (${TRANSPORT}) consistent after ${formedS.toFixed(1)} s; settling ${SETTLE_MS / 1000} s`);
  await sleep(SETTLE_MS);
  const session = PROFILE_DIR ? new Session() : undefined;
  if (session) { session.connect(); await session.post('Profiler.enable'); }
  // GC pauses, and those the GC pacer forced (gc() calls).
  const gcMs = { all: 0, forced: 0 };
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      gcMs.all += e.duration;
      if (((e as unknown as { detail?: { flags?: number } }).detail?.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) gcMs.forced += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const cpu = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
  const i0 = process.cpuUsage(), iw = performance.now();
  await sleep(5000);
  const idleRate = cpu(process.cpuUsage(i0)) / ((performance.now() - iw) / 1000);
  console.log(`idle: ${(idleRate * 100).toFixed(1)} % of a core`);
  const crawl = new RingCrawl(() => nodes[0], { minIntervalMs: 0, intervalFactor: 0, perNodeMs: 0 });
  for (let k = 0; k < CRAWLS; k++) {
    if (session) await session.post('Profiler.start');
    const packets = () => nodes.reduce((a, n) => a + n.router.stats.forwarded + n.router.stats.delivered, 0);
    const p0 = packets(), gc0 = { ...gcPaceStats }, g0 = { ...gcMs }, c0 = process.cpuUsage(), w0 = performance.now();
    await crawl.refresh(k === 0);
    const c = cpu(process.cpuUsage(c0)), wall = (performance.now() - w0) / 1000;
    if (session) writeFileSync(`${PROFILE_DIR}/crawl-${k}.cpuprofile`, JSON.stringify((await session.post('Profiler.stop')).profile));
    const p = crawl.progress();
    console.log(`crawl ${k + 1} (${k === 0 ? 'full' : 'periodic'}): ${p.stats?.['Total Nodes']} nodes (complete ${p.complete}), ${crawl.lastAsked?.() ?? '?'} asked, ${wall.toFixed(2)} s, ${packets() - p0} routed messages handled, ` +
      `CPU ${c.toFixed(2)} s (${(c - idleRate * wall).toFixed(2)} s over idle), GC ${(gcMs.all - g0.all).toFixed(0)} ms (forced ${(gcMs.forced - g0.forced).toFixed(0)} ms; the pacer's: ${gcPaceStats.collections - gc0.collections} collections, ${gcPaceStats.full - gc0.full} full)`);
    await sleep(2000);
  }
  session?.disconnect();
  obs.disconnect();
  crawl.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all(dhts.map((d) => d.close().catch(() => {})));
}

main().then(() => process.exit(0), (e) => { console.error(`bench:web-crawl: ${(e as Error).message}`); process.exit(1); });
