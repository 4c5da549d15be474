// npm run bench:vpn-soak (root) — bounded memory (issue 17): one iperf3 TCP stream for
// --seconds (default 600) through two GroupVPN daemons in the bench:vpn lab (hosts boot, a, b;
// bench/lab/netns.ts), sampling both daemons' RSS (/proc/<pid>/status VmRSS) every --every
// seconds (default 10). Verdict per daemon: the largest sample after the first minute is within
// 10 % of the sample at one minute. --fast-path false runs the daemons with IpopConfig/FastPath
// false, --native-flows true with IpopConfig/NativeFlows true; --json FILE writes the series. At the end both daemons' traffic counters are printed
// (groupvpn status: frames sent in place, fragment repair requests and losses).
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ensurePackages, Lab, labUnavailableReason, stopProcess, waitFor } from './lab/netns.js';
import { getState, groupvpn, hostConfig, startBootstrap } from './lab/ipop.js';
import { waitPing } from './lab/baselines.js';
import { iperf } from './lab/measure.js';

const arg = (name: string): string | undefined => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
const num = (name: string, dflt: number): number => {
  const v = arg(name) === undefined ? dflt : Number(arg(name));
  if (!Number.isSafeInteger(v) || v <= 0) { console.error(`--${name}: expected a positive integer`); process.exit(2); }
  return v;
};
const SECONDS = num('seconds', 600);
const EVERY = num('every', 10);
const WARMUP_S = Math.min(60, SECONDS);
const TOLERANCE = 0.10;
const fpArg = arg('fast-path') ?? 'true';
if (fpArg !== 'true' && fpArg !== 'false') { console.error('--fast-path: expected true or false'); process.exit(2); }
const FAST_PATH = fpArg === 'true';
const nfArg = arg('native-flows') ?? 'false';
if (nfArg !== 'true' && nfArg !== 'false') { console.error('--native-flows: expected true or false'); process.exit(2); }
const NATIVE_FLOWS = nfArg === 'true';
if (NATIVE_FLOWS && !FAST_PATH) { console.error('--native-flows true needs --fast-path true'); process.exit(2); }
const jsonFile = arg('json');
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Resident set of a process in KB, or undefined once it is gone. */
export function rssKb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch { return undefined; }
}

export interface SoakVerdict { atWarmupKb: number; maxAfterKb: number; ratio: number; ok: boolean }

/** samples: [seconds since start, KB]; the verdict compares everything after warmupS with the sample at warmupS. */
export function soakVerdict(samples: Array<[number, number]>, warmupS: number, tolerance = TOLERANCE): SoakVerdict | undefined {
  const at = samples.find(([s]) => s >= warmupS);
  const after = samples.filter(([s]) => s > at?.[0]!);
  if (!at || after.length === 0) return undefined;
  const maxAfterKb = Math.max(...after.map(([, kb]) => kb));
  const ratio = maxAfterKb / at[1];
  return { atWarmupKb: at[1], maxAfterKb, ratio, ok: ratio <= 1 + tolerance };
}

async function main(): Promise<void> {
  const why = labUnavailableReason();
  if (why) { console.error(`bench:vpn-soak: ${why}`); process.exit(1); }
  await ensurePackages({ ip: 'iproute2', ss: 'iproute2', ping: 'iputils-ping', iperf3: 'iperf3', unshare: 'util-linux', nsenter: 'util-linux', sysctl: 'procps' });
  const watchdog = setTimeout(() => { console.error(`bench:vpn-soak: watchdog — exceeded ${SECONDS + 240} s, aborting`); process.exit(2); }, (SECONDS + 240) * 1000);
  watchdog.unref();
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
  const lab = await Lab.create('bsoak', ['boot', 'a', 'b']);
  const series: Record<'a' | 'b', Array<[number, number]>> = { a: [], b: [] };
  let mbit = 0, retransmits = 0;
  const traffic: Partial<Record<'a' | 'b', Record<string, number>>> = {};
  try {
    const boot = await startBootstrap(lab, 'boot', 4);
    const bootIp = lab.ip('boot');
    const cfg = {
      a: hostConfig(lab.dir, 'a', { bootIp, vip: '10.147.0.1', fastPath: FAST_PATH, nativeFlows: NATIVE_FLOWS }),
      b: hostConfig(lab.dir, 'b', { bootIp, vip: '10.147.0.2', fastPath: FAST_PATH, nativeFlows: NATIVE_FLOWS }),
    };
    try {
      for (const h of ['a', 'b'] as const) {
        const r = await groupvpn(lab, h, ['start', '-c', cfg[h], '--log-level', 'warn']);
        if (r.code !== 0) throw new Error(`groupvpn start on ${h}: ${r.stderr.trim()}`);
      }
      await waitPing(lab, 'a', '10.147.0.2', 30_000);
      await waitFor(async () => (await getState(lab, 'a'))?.peers.find((p) => p.ip4 === '10.147.0.2')?.status === 'online', 20_000, 'direct connection a → b', 300);
      const pids = { a: 0, b: 0 };
      for (const h of ['a', 'b'] as const) pids[h] = Number(readFileSync(join(`${cfg[h]}.data`, 'groupvpn.pid'), 'utf8').split('\n')[0]);
      if (!(pids.a > 0 && pids.b > 0)) throw new Error(`cannot read the daemons' pids: ${pids.a}, ${pids.b}`);
      let t0 = 0;
      let sampler: NodeJS.Timeout | undefined;
      const sample = () => {
        const s = Math.round((performance.now() - t0) / 1000);
        for (const h of ['a', 'b'] as const) { const kb = rssKb(pids[h]); if (kb !== undefined) series[h].push([s, kb]); }
        log(`${String(s).padStart(4)} s  RSS a ${series.a.at(-1)?.[1]} KB  b ${series.b.at(-1)?.[1]} KB`);
      };
      try {
        const r = await iperf(lab, 'a', 'b', '10.147.0.2', SECONDS, () => { t0 = performance.now(); sample(); sampler = setInterval(sample, EVERY * 1000); });
        mbit = r.bitsPerSecond / 1e6;
        retransmits = r.retransmits;
      } finally {
        if (sampler) clearInterval(sampler);
      }
      // The data path's counters (frames in place, fragment repairs) over the whole run.
      for (const h of ['a', 'b'] as const) {
        try { traffic[h] = (JSON.parse((await groupvpn(lab, h, ['status', '-c', cfg[h], '--json'])).stdout) as { traffic?: Record<string, number> }).traffic; } catch { /* reported as absent */ }
      }
    } finally {
      for (const h of ['a', 'b'] as const) await groupvpn(lab, h, ['stop', '-c', cfg[h]]);
      await stopProcess(boot);
    }
  } finally {
    await lab.destroy();
  }
  const load1 = loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`\nbench:vpn-soak: iperf3 TCP a → b through two GroupVPN daemons (FastPath ${FAST_PATH}, NativeFlows ${NATIVE_FLOWS}), ${SECONDS} s, ${mbit.toFixed(0)} Mbit/s, ${retransmits} retransmits; load average ${load0} → ${load1}`);
  console.log(`RSS every ${EVERY} s (KB): seconds | a | b`);
  for (let i = 0; i < Math.max(series.a.length, series.b.length); i++) console.log(`${series.a[i]?.[0] ?? series.b[i]?.[0]} | ${series.a[i]?.[1] ?? '-'} | ${series.b[i]?.[1] ?? '-'}`);
  for (const h of ['a', 'b'] as const) console.log(`daemon ${h} traffic: ${traffic[h] ? JSON.stringify(traffic[h]) : 'n/a'}`);
  let ok = true;
  for (const h of ['a', 'b'] as const) {
    const v = soakVerdict(series[h], WARMUP_S);
    if (!v) { console.log(`daemon ${h}: too few samples for a verdict`); ok = false; continue; }
    ok &&= v.ok;
    console.log(`daemon ${h}: ${v.atWarmupKb} KB at ${WARMUP_S} s, at most ${v.maxAfterKb} KB after (${((v.ratio - 1) * 100).toFixed(1)} %): ${v.ok ? 'within' : 'NOT within'} ${TOLERANCE * 100} %`);
  }
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ seconds: SECONDS, every: EVERY, fastPath: FAST_PATH, nativeFlows: NATIVE_FLOWS, mbit, retransmits, load0, load1, series, traffic }, null, 1));
  process.exitCode = ok ? 0 : 1;
}

if (process.argv[1]?.endsWith('vpn-soak.js')) main().catch((e) => { console.error(`bench:vpn-soak: ${(e as Error).message}`); process.exit(1); });
