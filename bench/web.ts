// npm run bench:web — what the web view costs a 1,000-node process: N nodes on loopback UDP (as
// bench/ring.ts) with their DHTs and the control server, measured once the ring is consistent
// and settled. The cost has two parts, measured apart because they come at different paces:
//  1. Serving. The server crawls once (as for a page open a while), then stops crawling; the
//     server process's CPU is measured over ROUNDS pairs of periods, a fetching one (another
//     process fetches the page, its JSON and /metrics once a second each, as the page does:
//     conditionally, bench/web-fetch.ts) then an idle one, after a first idle one. Each round's
//     extra is its fetching period's CPU minus the mean of the idle periods on either side:
//     short periods, interleaved, so the overlay's own drift cancels out; the mean and the
//     spread of the rounds are reported. Then each path is fetched BURST times back to back:
//     its CPU ms per request, beyond the idle rate.
//  2. Crawling. A page that stays open has the server crawl again at its interval (ring-crawl.ts:
//     at 1,000 nodes, 50 ms per node found); the bench makes a full crawl then CRAWLS periodic
//     ones and measures each one's CPU beyond the idle rate (its JSON, gzip and ETag included).
//     Its share of a core is the periodic crawls' mean CPU over (interval + duration).
// The figure: serving's mean extra plus the crawl's share, as % of one core (target ≤ 5 %).
//   BENCH_WEB_NODES (1000), BENCH_WEB_SECONDS (20 per period), BENCH_WEB_ROUNDS (5),
//   BENCH_WEB_BURST (50), BENCH_WEB_CRAWLS (3), BENCH_SETTLE_MS (30000),
//   BENCH_WEB_TRANSPORT (udp, or memory: in-process delivery, lighter on a loaded machine),
//   BENCH_WEB_PROFILE (a directory: V8 CPU profiles of the fetching periods, fetch-<k>.cpuprofile)
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { OverlayMetrics } from '../src/control/metrics.js';
import { ControlServer } from '../src/control/server.js';
import { crawlInterval, RING_CRAWL_DEFAULTS, RingCrawl } from '../src/control/web/ring-crawl.js';
import { cryptoRandom } from '../src/util/random.js';
import type { PathResult } from './web-fetch.js';
import { startWebRing } from './web-ring.js';

const N = Number(process.env.BENCH_WEB_NODES ?? 1000);
const PERIOD_S = Number(process.env.BENCH_WEB_SECONDS ?? 20);
const ROUNDS = Number(process.env.BENCH_WEB_ROUNDS ?? 5);
const BURST = Number(process.env.BENCH_WEB_BURST ?? 50);
const CRAWLS = Number(process.env.BENCH_WEB_CRAWLS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const PROFILE_DIR = process.env.BENCH_WEB_PROFILE;
const PATHS = ['/', '/api/crawl', '/api/ring', '/api/local', '/api/history', '/metrics'];
const TARGET_PCT = 5;
const TRANSPORT = process.env.BENCH_WEB_TRANSPORT ?? 'udp';
const FETCHER = fileURLToPath(new URL('./web-fetch.js', import.meta.url));
const tty = process.stderr.isTTY;
const progress = (s: string) => { if (tty) process.stderr.write(`\r\x1b[K${s}`); };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuS = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

/** Runs the fetcher; `onLine` sees its stdout lines as they come; resolves with its results. */
function fetcher(port: number, args: string[], onLine: (l: string) => void = () => {}): Promise<Record<string, PathResult>> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [FETCHER, String(port), ...args, JSON.stringify(PATHS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '', last = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { last = buf.slice(0, i); buf = buf.slice(i + 1); onLine(last); }
    });
    const kill = setTimeout(() => c.kill('SIGKILL'), 600_000);
    c.on('exit', (code) => { clearTimeout(kill); code === 0 ? resolve(JSON.parse(last)) : reject(new Error(`fetcher exited with ${code}`)); });
  });
}

/** Server-process CPU share of one core over `seconds` while `during` runs (or idle). */
async function shareOver<T>(seconds: number, during?: () => Promise<T>): Promise<{ share: number; result?: T }> {
  const c0 = process.cpuUsage(), t0 = performance.now();
  const result = during ? await during() : (await sleep(seconds * 1000), undefined);
  return { share: cpuS(process.cpuUsage(c0)) / ((performance.now() - t0) / 1000), result };
}

const spread = (xs: number[]) => `${pct(Math.min(...xs))} … ${pct(Math.max(...xs))}`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1] ?? 0; };

async function main(): Promise<void> {
  const { nodes, dhts, formedS } = await startWebRing(N, TRANSPORT, progress);
  progress(`ring consistent after ${formedS.toFixed(1)} s; settling ${SETTLE_MS / 1000} s`);
  await sleep(SETTLE_MS);
  const port = 20000 + cryptoRandom.int(20000);
  const server = new ControlServer(nodes, port, undefined, { dhts });
  server.metrics = new OverlayMetrics(nodes, dhts); // as the commands set it up (src/cli/overlay.ts)
  await server.start();
  // A little DHT traffic, so the local panel and the history have something to count.
  const traffic = setInterval(() => {
    const d = dhts[cryptoRandom.int(N)]!;
    d.dht.put(new TextEncoder().encode(`k${cryptoRandom.int(1000)}`), new TextEncoder().encode('v'), 600).catch(() => {});
  }, 200);
  const load = [loadavg()[0]!];
  console.log(`web view on ${N} nodes (${TRANSPORT}, one process; ring consistent after ${formedS.toFixed(1)} s)`);

  // 1. Serving, the crawl held still.
  progress('a first crawl');
  await server.web.crawl.refresh();
  server.web.crawl.stop();
  const session = PROFILE_DIR ? new Session() : undefined;
  if (session) { session.connect(); await session.post('Profiler.enable'); }
  const idle: number[] = [], busy: number[] = [], extra: number[] = [];
  let results: Record<string, PathResult> | undefined;
  progress(`idle ${PERIOD_S} s`);
  idle.push((await shareOver(PERIOD_S)).share);
  for (let k = 0; k < ROUNDS; k++) {
    progress(`round ${k + 1}/${ROUNDS}: fetching every second for ${PERIOD_S} s`);
    if (session) await session.post('Profiler.start');
    const b = await shareOver(PERIOD_S, () => fetcher(port, ['every', String(PERIOD_S)]));
    if (session) writeFileSync(`${PROFILE_DIR}/fetch-${k}.cpuprofile`, JSON.stringify((await session.post('Profiler.stop')).profile));
    results ??= b.result;
    busy.push(b.share);
    progress(`round ${k + 1}/${ROUNDS}: idle ${PERIOD_S} s`);
    idle.push((await shareOver(PERIOD_S)).share);
    extra.push(b.share - (idle[k]! + idle[k + 1]!) / 2);
  }
  session?.disconnect();
  load.push(loadavg()[0]!);
  const idleRate = mean(idle);
  console.log(`\n1. serving, ${ROUNDS} rounds of ${PERIOD_S} s fetching between ${PERIOD_S} s idle periods (the first round's fetches:)`);
  console.log('| path | status | 200 | 304 | bytes | median ms | max ms |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [p, r] of Object.entries(results!)) {
    console.log(`| ${p} | ${r.status}${r.error ? ` (${r.error})` : ''} | ${r.ok} | ${r.notModified} | ${r.bytes} | ${median(r.ms).toFixed(1)} | ${Math.max(0, ...r.ms).toFixed(1)} |`);
  }
  console.log(`idle periods: ${idle.map(pct).join(', ')} (spread ${spread(idle)})`);
  console.log(`fetching periods: ${busy.map(pct).join(', ')}`);
  console.log(`extra per round: ${extra.map(pct).join(', ')}; mean ${pct(mean(extra))} (spread ${spread(extra)})`);

  // Per path: CPU ms per request beyond the idle rate, BURST requests back to back.
  const perPath: Record<string, number> = {};
  let mark = { c: process.cpuUsage(), t: performance.now() };
  const burst = await fetcher(port, ['burst', String(BURST)], (l) => {
    if (l.startsWith('start ')) mark = { c: process.cpuUsage(), t: performance.now() };
    else if (l.startsWith('end ')) perPath[l.slice(4)] = (cpuS(process.cpuUsage(mark.c)) - idleRate * (performance.now() - mark.t) / 1000) * 1000 / BURST;
  });
  console.log(`\nper request, ${BURST} back to back, CPU beyond the idle rate: ` +
    PATHS.map((p) => `${p} ${perPath[p]!.toFixed(2)} ms (${burst[p]!.notModified} × 304)`).join(', '));

  // 2. Crawling: a full crawl, then periodic ones.
  const crawl = new RingCrawl(() => nodes[0], { minIntervalMs: 0, intervalFactor: 0, perNodeMs: 0 });
  const crawlCpu: number[] = [];
  let shareOfCrawl = 0;
  console.log('');
  for (let k = 0; k <= CRAWLS; k++) {
    progress(`crawl ${k + 1}/${CRAWLS + 1}`);
    const c0 = process.cpuUsage(), t0 = performance.now();
    await crawl.refresh(k === 0);
    crawl.ringGzip(); crawl.ringEtag();
    const wall = (performance.now() - t0) / 1000, over = cpuS(process.cpuUsage(c0)) - idleRate * wall, p = crawl.progress();
    const interval = crawlInterval(RING_CRAWL_DEFAULTS, wall * 1000, p.found) / 1000;
    console.log(`crawl ${k + 1} (${k === 0 ? 'full, as "crawl now"' : 'periodic'}): ${p.found} nodes (complete ${p.complete}), ${crawl.lastAsked()} asked, ${wall.toFixed(2)} s, ` +
      `CPU ${over.toFixed(2)} s beyond idle; the server's next crawl after ${interval.toFixed(0)} s`);
    if (k > 0) { crawlCpu.push(over); shareOfCrawl = mean(crawlCpu) / (interval + wall); }
    await sleep(2000);
  }
  crawl.stop();
  clearInterval(traffic);
  load.push(loadavg()[0]!);
  if (tty) process.stderr.write('\r\x1b[K');
  const total = mean(extra) + shareOfCrawl;
  console.log(`periodic crawls: ${mean(crawlCpu).toFixed(2)} CPU s each, ${pct(shareOfCrawl)} of a core at the server's interval`);
  console.log(`load average (1 min): ${load.map((l) => l.toFixed(1)).join(', ')} (start, after serving, end)`);
  console.log(`extra CPU of serving the page, its JSON and /metrics every second, crawls included: ${pct(total)} of one core ` +
    `(serving ${pct(mean(extra))} + crawling ${pct(shareOfCrawl)}; target ≤ ${TARGET_PCT} %: ${total * 100 <= TARGET_PCT ? 'met' : 'MISSED'})`);
  await server.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all(dhts.map((d) => d.close().catch(() => {})));
}

main().then(() => process.exit(0), (e) => { console.error(`bench:web: ${(e as Error).message}`); process.exit(1); });
