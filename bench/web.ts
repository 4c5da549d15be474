// npm run bench:web — what the web view costs a 1,000-node process. N nodes on loopback UDP
// (as bench/ring.ts) with their DHTs and the control server; once the ring is consistent and
// settled, the server process's CPU time is measured over three equal periods: idle, then with
// a separate process fetching the page, its JSON endpoints and /metrics once a
// second each, then idle again. The extra CPU is the fetching period's minus the mean of the
// idle ones, as % of one core (target ≤ 5 %). The fetcher is another process, so only the
// server's side is counted. Per endpoint: responses, bytes and latency.
//   BENCH_WEB_NODES (1000), BENCH_WEB_SECONDS (60 per period), BENCH_SETTLE_MS (30000),
//   BENCH_WEB_TRANSPORT (udp, or memory: in-process delivery, lighter on a loaded machine),
//   BENCH_WEB_WARM (1: before the first idle period the server crawls once, as for a page that
//   has been open a while, so the fetching period sees the periodic crawls of a steady state;
//   0: the first crawl of the fetching period is the server's first, which asks every node)
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { OverlayMetrics } from '../src/control/metrics.js';
import { ControlServer } from '../src/control/server.js';
import { cryptoRandom } from '../src/util/random.js';
import { startWebRing } from './web-ring.js';

const N = Number(process.env.BENCH_WEB_NODES ?? 1000);
const PERIOD_S = Number(process.env.BENCH_WEB_SECONDS ?? 60);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 30_000);
const PATHS = ['/', '/api/crawl', '/api/ring', '/api/local', '/api/history', '/metrics'];
const TARGET_PCT = 5;
const TRANSPORT = process.env.BENCH_WEB_TRANSPORT ?? 'udp';
const WARM = process.env.BENCH_WEB_WARM !== '0';
const tty = process.stderr.isTTY;
const progress = (s: string) => { if (tty) process.stderr.write(`\r\x1b[K${s}`); };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fetcher: every second, each path once (in sequence), for `seconds`; prints per-path results as JSON. */
const FETCHER = `
const [port, seconds, paths] = [Number(process.argv[1]), Number(process.argv[2]), JSON.parse(process.argv[3])];
const r = Object.fromEntries(paths.map((p) => [p, { ok: 0, status: 0, bytes: 0, ms: [] }]));
const end = Date.now() + seconds * 1000;
while (Date.now() < end) {
  const t = Date.now();
  for (const p of paths) {
    const t0 = performance.now();
    try {
      const res = await fetch('http://127.0.0.1:' + port + p);
      const body = await res.arrayBuffer();
      const x = r[p]; x.status = res.status; x.ms.push(performance.now() - t0);
      if (res.ok) { x.ok++; x.bytes = body.byteLength; }
    } catch (e) { r[p].error = e.message; }
  }
  await new Promise((ok) => setTimeout(ok, Math.max(0, 1000 - (Date.now() - t))));
}
console.log(JSON.stringify(r));
`;

function fetchFor(port: number, seconds: number): Promise<Record<string, { ok: number; status: number; bytes: number; ms: number[]; error?: string }>> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', FETCHER, String(port), String(seconds), JSON.stringify(PATHS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const kill = setTimeout(() => c.kill('SIGKILL'), (seconds + 60) * 1000);
    c.on('exit', (code) => { clearTimeout(kill); code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`fetcher exited with ${code}`)); });
  });
}

/** Server-process CPU seconds over `seconds` while `during` runs (or idle). */
async function cpuOver<T>(seconds: number, during?: () => Promise<T>): Promise<{ cpuS: number; result?: T }> {
  const c0 = process.cpuUsage(), t0 = performance.now();
  const result = during ? await during() : (await sleep(seconds * 1000), undefined);
  const c = process.cpuUsage(c0), wall = (performance.now() - t0) / 1000;
  // Normalised to exactly `seconds` (the fetcher may end a little late).
  return { cpuS: ((c.user + c.system) / 1e6) * (seconds / wall), result };
}

async function main(): Promise<void> {
  const { nodes, dhts, formedS: formed } = await startWebRing(N, TRANSPORT, progress);
  progress(`ring consistent after ${formed.toFixed(1)} s; settling ${SETTLE_MS / 1000} s`);
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

  if (WARM) {
    progress('a first crawl (warm start)');
    await server.web.crawl.refresh();
    console.log(`warm start: a first crawl of ${server.web.crawl.progress().found} nodes before the idle period`);
  }
  const load0 = loadavg()[0]!;
  progress(`idle ${PERIOD_S} s`);
  const idle1 = await cpuOver(PERIOD_S);
  progress(`fetching every second for ${PERIOD_S} s`);
  const busy = await cpuOver(PERIOD_S, () => fetchFor(port, PERIOD_S));
  progress(`idle ${PERIOD_S} s`);
  const idle2 = await cpuOver(PERIOD_S);
  if (tty) process.stderr.write('\r\x1b[K');
  clearInterval(traffic);
  const crawl = server.web.crawl.progress();

  const idleMean = (idle1.cpuS + idle2.cpuS) / 2;
  const extraPct = ((busy.cpuS - idleMean) / PERIOD_S) * 100;
  console.log(`web view on ${N} nodes (${TRANSPORT}, one process; ring consistent after ${formed.toFixed(1)} s), ${PERIOD_S} s periods`);
  console.log(`| path | status | responses | bytes | median ms | max ms |`);
  console.log(`| --- | --- | --- | --- | --- | --- |`);
  for (const [p, r] of Object.entries(busy.result!)) {
    const ms = [...r.ms].sort((a, b) => a - b);
    console.log(`| ${p} | ${r.status}${r.error ? ` (${r.error})` : ''} | ${r.ok} | ${r.bytes} | ${(ms[ms.length >> 1] ?? 0).toFixed(1)} | ${(ms[ms.length - 1] ?? 0).toFixed(1)} |`);
  }
  console.log(`crawls: ${crawl.generation} (last: ${crawl.stats?.['Total Nodes']} nodes, ${server.web.crawl.lastAsked()} of them asked, took ${crawl.stats?.['Crawl took']} s, complete ${crawl.complete})`);
  console.log(`load average (1 min): ${load0.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end`);
  console.log(`server CPU: idle ${(idle1.cpuS / PERIOD_S * 100).toFixed(1)} % and ${(idle2.cpuS / PERIOD_S * 100).toFixed(1)} %, fetching ${(busy.cpuS / PERIOD_S * 100).toFixed(1)} % of one core`);
  console.log(`extra CPU of serving the page, its JSON and /metrics every second: ${extraPct.toFixed(2)} % of one core (target ≤ ${TARGET_PCT} %: ${extraPct <= TARGET_PCT ? 'met' : 'MISSED'})`);
  await server.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all(dhts.map((d) => d.close().catch(() => {})));
}

main().then(() => process.exit(0), (e) => { console.error(`bench:web: ${(e as Error).message}`); process.exit(1); });
