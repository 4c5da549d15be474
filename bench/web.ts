// npm run bench:web — what the web view costs a 1,000-node process: N nodes on loopback UDP (as
// bench/ring.ts) with their DHTs and the control server, measured once the ring is consistent
// and settled. The server crawls once (every node asked), then ROUNDS times: a fetching period
// (another process, bench/web-fetch.ts, fetches the page, its JSON and /metrics once a second
// each, conditionally as the page does), an idle period, and one of the server's periodic crawls:
// one every 2 periods (50 s), at least as often as an open page starts them at 1,000 nodes (the
// server's interval: 50 ms per node found, and at least 20 × the last crawl's duration). Two parts:
//  1. Serving: each round's fetching period's CPU minus the mean of the idle periods on either
//     side. Short interleaved periods, so the overlay's own drift cancels out; the rounds' mean
//     and spread are reported. Then each path is fetched BURST times back to back, conditionally
//     and then unconditionally: its CPU ms per 304 and per 200 beyond the idle rate.
//  2. Crawling: each periodic crawl's CPU beyond the idle rate (its JSON, gzip and ETag
//     included), over the time from one crawl's start to the next's.
// The figure: serving plus crawling's share, as % of one core (target ≤ 5 %). Serving is measured
// two ways: directly, as the requests the rounds made (their mix of 200s and 304s per path) times
// each kind's CPU per request from the back-to-back bursts; and by subtraction, the rounds' mean
// and median. The direct figure is the headline: its signal (200 requests at once) stands well
// clear of the overlay's own drift, which moves the subtraction's rounds by several points.
//   BENCH_WEB_NODES (1000), BENCH_WEB_SECONDS (25 per period), BENCH_WEB_ROUNDS (5),
//   BENCH_WEB_BURST (200), BENCH_SETTLE_MS (30000),
//   BENCH_WEB_TRANSPORT (udp, or memory: in-process delivery, lighter on a loaded machine),
//   BENCH_WEB_PROFILE (a directory: V8 CPU profiles of the fetching periods, fetch-<k>.cpuprofile)
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { OverlayMetrics } from '../src/control/metrics.js';
import { ControlServer } from '../src/control/server.js';
import { cryptoRandom } from '../src/util/random.js';
import type { PathResult } from './web-fetch.js';
import { startWebRing } from './web-ring.js';

const N = Number(process.env.BENCH_WEB_NODES ?? 1000);
const PERIOD_S = Number(process.env.BENCH_WEB_SECONDS ?? 25);
const ROUNDS = Number(process.env.BENCH_WEB_ROUNDS ?? 5);
const BURST = Number(process.env.BENCH_WEB_BURST ?? 200);
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

  // The server's first crawl (it asks every node), then ROUNDS of: fetching, idle, the periodic crawl.
  const crawls: { start: number; wall: number; cpu: number; asked: number; found: number; complete: boolean; interval: number }[] = [];
  const crawlNow = async (): Promise<void> => {
    const c = server.web.crawl;
    for (let i = 0; i < 600 && c.progress().running; i++) await sleep(100); // one the page started
    // A periodic crawl once a round (every 2 periods): at least as often as the server's interval
    // lets an open page start one (at 1,000 nodes, 50 s or 20 × the last crawl's duration).
    const c0 = process.cpuUsage(), t0 = performance.now();
    await c.refresh(crawls.length > 0, false);
    c.ringGzip(); c.ringEtag(); // once per crawl, whoever asks first
    const p = c.progress();
    crawls.push({ start: t0 / 1000, wall: (performance.now() - t0) / 1000, cpu: cpuS(process.cpuUsage(c0)), asked: c.lastAsked(), found: p.found, complete: p.complete,
      interval: (c.nextAt() - (p.finishedAt ?? 0)) / 1000 });
  };
  progress('the first crawl');
  await crawlNow();
  const session = PROFILE_DIR ? new Session() : undefined;
  if (session) { session.connect(); await session.post('Profiler.enable'); }
  const idle: number[] = [], busy: number[] = [], extra: number[] = [];
  let results: Record<string, PathResult> | undefined, crawlsWhileFetching = 0, fetchingS = 0;
  /** Per path: the 200s and 304s of all rounds. */
  const mix: Record<string, { ok: number; notModified: number }> = Object.fromEntries(PATHS.map((p) => [p, { ok: 0, notModified: 0 }]));
  progress(`idle ${PERIOD_S} s`);
  idle.push((await shareOver(PERIOD_S)).share);
  for (let k = 0; k < ROUNDS; k++) {
    progress(`round ${k + 1}/${ROUNDS}: fetching every second for ${PERIOD_S} s`);
    if (session) await session.post('Profiler.start');
    const g0 = server.web.crawl.progress().generation;
    const b = await shareOver(PERIOD_S, () => fetcher(port, ['every', String(PERIOD_S)]));
    if (server.web.crawl.progress().generation !== g0 || server.web.crawl.progress().running) crawlsWhileFetching++;
    if (session) writeFileSync(`${PROFILE_DIR}/fetch-${k}.cpuprofile`, JSON.stringify((await session.post('Profiler.stop')).profile));
    results ??= b.result;
    for (const [p, r] of Object.entries(b.result!)) { mix[p]!.ok += r.ok; mix[p]!.notModified += r.notModified; }
    fetchingS += PERIOD_S;
    busy.push(b.share);
    progress(`round ${k + 1}/${ROUNDS}: idle ${PERIOD_S} s`);
    idle.push((await shareOver(PERIOD_S)).share);
    extra.push(b.share - (idle[k]! + idle[k + 1]!) / 2);
    progress(`round ${k + 1}/${ROUNDS}: the periodic crawl`);
    await crawlNow();
  }
  session?.disconnect();
  const idleRate = mean(idle);
  console.log(`\n1. serving: ${ROUNDS} rounds of ${PERIOD_S} s fetching between ${PERIOD_S} s idle periods (the first round's fetches:)`);
  console.log('| path | status | 200 | 304 | bytes | median ms | max ms |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [p, r] of Object.entries(results!)) {
    console.log(`| ${p} | ${r.status}${r.error ? ` (${r.error})` : ''} | ${r.ok} | ${r.notModified} | ${r.bytes} | ${median(r.ms).toFixed(1)} | ${Math.max(0, ...r.ms).toFixed(1)} |`);
  }
  console.log(`idle periods: ${idle.map(pct).join(', ')} (spread ${spread(idle)})`);
  console.log(`fetching periods: ${busy.map(pct).join(', ')}; a crawl ran during ${crawlsWhileFetching} of them`);
  console.log(`extra per round: ${extra.map(pct).join(', ')}; mean ${pct(mean(extra))} (spread ${spread(extra)})`);

  // Per path: CPU ms per request beyond the idle rate, BURST requests back to back, conditional
  // ("cond": a 304 while unchanged) and unconditional ("full": a 200).
  const perPath: Record<string, number> = {};
  let mark = { c: process.cpuUsage(), t: performance.now() };
  const burst = await fetcher(port, ['burst', String(BURST)], (l) => {
    if (l.startsWith('start ')) mark = { c: process.cpuUsage(), t: performance.now() };
    else if (l.startsWith('end ')) perPath[l.slice(4)] = (cpuS(process.cpuUsage(mark.c)) - idleRate * (performance.now() - mark.t) / 1000) * 1000 / BURST;
  });
  console.log(`per request, ${BURST} back to back, CPU beyond the idle rate, conditional / unconditional: ` +
    PATHS.map((p) => `${p} ${perPath[`${p} cond`]!.toFixed(2)} (${burst[p]!.notModified} × 304) / ${perPath[`${p} full`]!.toFixed(2)} ms`).join(', '));
  // Direct: the rounds' requests (each path's 200s and 304s) at those costs.
  const directMs = PATHS.reduce((a, p) => {
    const cond = perPath[`${p} cond`]!, full = perPath[`${p} full`]!, m = mix[p]!;
    // A path with no ETag answered both bursts with 200s: its 200 costs the mean of the two.
    if (burst[p]!.notModified === 0) return a + (m.ok + m.notModified) * (cond + full) / 2;
    return a + m.ok * full + m.notModified * cond;
  }, 0);
  const direct = directMs / 1000 / fetchingS;
  console.log(`the rounds' requests: ${PATHS.map((p) => `${p} ${mix[p]!.ok} × 200, ${mix[p]!.notModified} × 304`).join('; ')} in ${fetchingS} s: ` +
    `${directMs.toFixed(0)} CPU ms at the burst costs, ${pct(direct)} of a core (direct)`);

  // 2. Crawling: each crawl's CPU beyond the idle rate; the periodic ones' share at their pace.
  console.log('\n2. crawling');
  crawls.forEach((c, k) => console.log(`crawl ${k + 1} (${k === 0 ? 'the first: every node asked' : 'periodic'}): ${c.found} nodes (complete ${c.complete}), ${c.asked} asked, ` +
    `${c.wall.toFixed(2)} s, CPU ${(c.cpu - idleRate * c.wall).toFixed(2)} s beyond idle; the server's next one after ${c.interval.toFixed(0)} s`));
  const periodic = crawls.slice(1);
  const every = periodic.length > 1 ? (periodic.at(-1)!.start - periodic[0]!.start) / (periodic.length - 1) : periodic[0]!.start - crawls[0]!.start;
  const crawlCpu = mean(periodic.map((c) => c.cpu - idleRate * c.wall)), shareOfCrawl = crawlCpu / every;
  clearInterval(traffic);
  load.push(loadavg()[0]!);
  if (tty) process.stderr.write('\r\x1b[K');
  const total = direct + shareOfCrawl;
  const verdict = (x: number) => (x * 100 <= TARGET_PCT ? 'met' : 'MISSED');
  console.log(`periodic crawls: ${crawlCpu.toFixed(2)} CPU s each, one every ${every.toFixed(0)} s: ${pct(shareOfCrawl)} of a core`);
  console.log(`load average (1 min): ${load.map((l) => l.toFixed(1)).join(', ')} (start, end)`);
  console.log(`cross-check by subtraction: serving ${pct(mean(extra))} (rounds' mean) or ${pct(median(extra))} (median); with crawling ` +
    `${pct(mean(extra) + shareOfCrawl)} (${verdict(mean(extra) + shareOfCrawl)}) or ${pct(median(extra) + shareOfCrawl)} (${verdict(median(extra) + shareOfCrawl)})`);
  console.log(`extra CPU of serving the page, its JSON and /metrics every second, crawls included: ${pct(total)} of one core ` +
    `(serving ${pct(direct)} direct + crawling ${pct(shareOfCrawl)}; target ≤ ${TARGET_PCT} %: ${verdict(total)})`);
  await server.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all(dhts.map((d) => d.close().catch(() => {})));
}

main().then(() => process.exit(0), (e) => { console.error(`bench:web: ${(e as Error).message}`); process.exit(1); });
