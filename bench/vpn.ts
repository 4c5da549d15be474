// npm run bench:vpn (root) — throughput, latency and CPU cost of a VPN between two network
// namespaces of one lab (bench/lab/netns.ts: hosts boot, a, b on one bridge, no link
// conditions), in one run, always a → b:
//  - plain underlay (no VPN): the ceiling on this machine;
//  - tinc 1.0 (Debian's tincd), router mode, UDP, default cipher, RSA keys from `tincd -K`,
//    and wireguard-go (Debian's userspace WireGuard), both set up in bench/lab/baselines.ts;
//  - our IPOP GroupVPN: measureIpop() (boot serves as its bootstrap node), with TAP offload
//    (the default) and with IpopConfig/Offload false (every frame on its own, as IPOP did);
//  - the Node floor (bench/lab/floor-relay.ts): the least a VPN in Node must do per packet
//    (our TAP addon with offload, node:dgram, no IP fragmentation), without and with one
//    ChaCha20-Poly1305 seal/open per message, and without AEAD but busy-polling (a core
//    per relay). What ipop adds above the floor is the overlay's cost; what the floor adds
//    above tinc is the runtime's. Skipped with --loss (the relay has no repair).
// Each: iperf3 TCP, one stream, SECONDS s (rate at the receiver); ping PINGS echoes 20 ms
// apart (median and mean RTT), and 200 echoes 2 ms apart (a process that sleeps 20 ms pays
// this machine's wake-up latency on every packet, a Node process more than a C one); for VPNs, utime+stime of both daemons from /proc/<pid>/stat
// around the iperf3 run, per GB received. Everything shares this machine's cores (iperf3
// client and server, both daemons, the kernel), so the figures compare VPNs here, nothing more.
//
// Options: --seconds N (iperf3 duration, default 10) --pings N (default 50)
//          --loss P (random loss of P % of the frames the bridge delivers to each host, default 0)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensurePackages, Lab, labUnavailableReason, pingArgv, pingTimes, stopProcess, waitFor } from './lab/netns.js';
import { getState, groupvpn, hostConfig, startBootstrap } from './lab/ipop.js';
import { listening, startFloor, startTinc, startWireguardGo, tincVersion, waitPing, wireguardGoVersion, type LabVpn } from './lab/baselines.js';

const IPERF_PORT = 5201;
const WATCHDOG_MS = 300_000;
const log = (s: string) => process.stderr.write(`${s}\n`);

export interface BenchOptions { seconds: number; pings: number; loss: number }
export interface Rtt { median: number; avg: number; min: number; max: number; received: number; sent: number }
export interface IperfResult { bitsPerSecond: number; bytes: number; retransmits: number; seconds: number }
export interface PathResult {
  label: string;
  tcp: IperfResult;
  rtt: Rtt;
  /** The same with pings 2 ms apart: the processes stay awake, so this is the VPN's own cost. */
  rttBusy: Rtt;
  /** utime+stime of the VPN daemons during the iperf3 run (undefined: no daemon). */
  daemonCpuS?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `count` pings `gapMs` apart (default 20) from host `from` to `ip`; throws if none come back. */
export async function pingRtt(lab: Lab, from: string, ip: string, count = 50, gapMs = 20): Promise<Rtt> {
  const r = await lab.exec(from, pingArgv(ip, { count, intervalS: gapMs / 1000, waitS: 2 }), { timeoutMs: count * gapMs + 15_000 });
  const ts = pingTimes(r.stdout);
  if (ts.length === 0) throw new Error(`ping ${ip} from ${from}: no replies (${(r.stdout + r.stderr).trim().split('\n').slice(-2).join(' ')})`);
  return { median: median(ts), avg: ts.reduce((a, b) => a + b, 0) / ts.length, min: Math.min(...ts), max: Math.max(...ts), received: ts.length, sent: count };
}

/** iperf3 TCP, one stream, `seconds` s: server (one-off) in host `server` bound to serverIp, client in `client`. */
export async function iperf(lab: Lab, client: string, server: string, serverIp: string, seconds: number, onStart?: () => void): Promise<IperfResult> {
  const srv = lab.spawn(server, ['iperf3', '-s', '-1', '-B', serverIp, '-p', String(IPERF_PORT)]);
  try {
    await waitFor(() => listening(lab, server, IPERF_PORT), 10_000, `iperf3 server in ${server}`);
    onStart?.();
    const r = await lab.exec(client, ['iperf3', '-c', serverIp, '-p', String(IPERF_PORT), '-t', String(seconds), '-J', '--connect-timeout', '5000'],
      { timeoutMs: (seconds + 30) * 1000 });
    let j: { error?: string; end?: { sum_received?: { bits_per_second: number; bytes: number; seconds: number }; sum_sent?: { retransmits?: number } } };
    try { j = JSON.parse(r.stdout); } catch { throw new Error(`iperf3 ${client} → ${serverIp}: exit ${r.code}, no JSON: ${r.stderr.trim()}`); }
    const rx = j.end?.sum_received;
    if (j.error || !rx || !(rx.bits_per_second > 0)) throw new Error(`iperf3 ${client} → ${serverIp}: ${j.error ?? 'no data received'}`);
    return { bitsPerSecond: rx.bits_per_second, bytes: rx.bytes, seconds: rx.seconds, retransmits: j.end?.sum_sent?.retransmits ?? 0 };
  } finally {
    await waitFor(() => srv.exitCode !== null || srv.signalCode !== null, 5000, 'iperf3 server to exit').catch(() => {});
    await stopProcess(srv);
  }
}

let clkTck: number | undefined;
/** User+system CPU seconds used so far by the processes `pids` (a vanished pid counts 0). */
export function cpuSeconds(pids: number[]): number {
  clkTck ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
  let ticks = 0;
  for (const pid of pids) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
      ticks += Number(f[11]) + Number(f[12]); // fields 14 utime, 15 stime
    } catch { /* gone */ }
  }
  return ticks / clkTck;
}

/** ping then iperf3 from → to (addressed as ip), with the CPU of `pids` over the iperf3 run. */
export async function measurePath(lab: Lab, label: string, from: string, to: string, ip: string, o: BenchOptions, pids: number[] = []): Promise<PathResult> {
  const rtt = await pingRtt(lab, from, ip, o.pings);
  log(`${label}: ping ${ip} median ${rtt.median.toFixed(3)} ms, mean ${rtt.avg.toFixed(3)} ms (${rtt.received}/${rtt.sent})`);
  const rttBusy = await pingRtt(lab, from, ip, 200, 2);
  log(`${label}: ping ${ip} 2 ms apart: median ${rttBusy.median.toFixed(3)} ms`);
  let cpu0 = 0;
  const tcp = await iperf(lab, from, to, ip, o.seconds, () => { cpu0 = cpuSeconds(pids); });
  const daemonCpuS = pids.length > 0 ? cpuSeconds(pids) - cpu0 : undefined;
  log(`${label}: TCP ${(tcp.bitsPerSecond / 1e6).toFixed(0)} Mbit/s${daemonCpuS === undefined ? '' : `, daemons ${daemonCpuS.toFixed(2)} CPU-s`}`);
  return { label, tcp, rtt, rttBusy, daemonCpuS };
}

/** Our IPOP GroupVPN between hosts a and b (bootstrap in boot), measured like tinc via measurePath. */
export async function measureIpop(lab: Lab, o: BenchOptions, offload = true): Promise<PathResult> {
  const boot = await startBootstrap(lab, 'boot', 4);
  const bootIp = lab.ip('boot');
  const cfg = { a: hostConfig(lab.dir, 'a', { bootIp, vip: '10.146.0.1', offload }), b: hostConfig(lab.dir, 'b', { bootIp, vip: '10.146.0.2', offload }) };
  try {
    for (const h of ['a', 'b'] as const) {
      const r = await groupvpn(lab, h, ['start', '-c', cfg[h], '--log-level', 'warn']);
      if (r.code !== 0) throw new Error(`groupvpn start on ${h}: ${r.stderr.trim()}`);
    }
    await waitPing(lab, 'a', '10.146.0.2', 30_000);
    // The first packets open the direct (on-demand) connection; measure over it.
    await waitFor(async () => (await getState(lab, 'a'))?.peers.find((p) => p.ip4 === '10.146.0.2')?.status === 'online', 20_000, 'direct connection a → b', 300);
    // Line 1 of groupvpn.pid is the pid (src/cli/pid-file.ts); a wrong read would show 0 CPU.
    const pids = ['a', 'b'].map((h) => Number(readFileSync(join(`${cfg[h as 'a' | 'b']}.data`, 'groupvpn.pid'), 'utf8').split('\n')[0]));
    if (!pids.every((p) => Number.isInteger(p) && p > 0)) throw new Error(`cannot read the daemons' pids: ${pids.join(', ')}`);
    return await measurePath(lab, offload ? 'ipop' : 'ipop (no offload)', 'a', 'b', '10.146.0.2', o, pids);
  } finally {
    for (const h of ['a', 'b'] as const) await groupvpn(lab, h, ['stop', '-c', cfg[h]]);
    await stopProcess(boot);
  }
}

async function main(): Promise<void> {
  const num = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
    if (!Number.isSafeInteger(v) || v <= 0) { console.error(`--${name}: expected a positive integer`); process.exit(2); }
    return v;
  };
  const li = process.argv.indexOf('--loss');
  const loss = li > 0 ? Number(process.argv[li + 1]) : 0;
  if (!(loss >= 0 && loss < 50)) { console.error('--loss: expected a percentage in [0, 50)'); process.exit(2); }
  const o: BenchOptions = { seconds: num('seconds', 10), pings: num('pings', 50), loss };
  const why = labUnavailableReason();
  if (why) { console.error(`bench:vpn: ${why}`); process.exit(1); }
  await ensurePackages({
    ip: 'iproute2', ss: 'iproute2', ping: 'iputils-ping', iperf3: 'iperf3', tincd: 'tinc', 'wireguard-go': 'wireguard-go', wg: 'wireguard-tools',
    unshare: 'util-linux', nsenter: 'util-linux', ...(loss > 0 ? { nft: 'nftables' } : {}),
  });
  const watchdog = setTimeout(() => { console.error(`bench:vpn: watchdog — exceeded ${WATCHDOG_MS / 1000} s, aborting`); process.exit(2); }, WATCHDOG_MS);
  watchdog.unref();

  const t0 = performance.now();
  // Other work on this shared machine skews every figure; the load average at least shows it.
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
  const lab = await Lab.create('bvpn', ['boot', 'a', 'b']);
  let plain: PathResult, tinc: PathResult | Error, wgGo: PathResult | Error, ipop: PathResult | Error, ipopNo: PathResult | Error;
  let floor: PathResult | Error, floorAead: PathResult | Error, floorSpin: PathResult | Error;
  try {
    log(`lab ${lab.base}: ${lab.hosts.map((h) => `${h}=${lab.ip(h)}`).join(' ')}`);
    if (loss > 0) await lab.setLoss(loss);
    await waitPing(lab, 'a', lab.ip('b'), 5000);
    plain = await measurePath(lab, 'plain', 'a', 'b', lab.ip('b'), o);
    const baseline = async (label: string, start: (lab: Lab, hosts: [string, string]) => Promise<LabVpn>) => {
      const vpn = await start(lab, ['a', 'b']);
      try {
        return await measurePath(lab, label, 'a', 'b', vpn.vip(1), o, vpn.daemons.map((d) => d.pid!));
      } finally {
        await Promise.all(vpn.daemons.map((d) => stopProcess(d)));
      }
    };
    tinc = await baseline('tinc', startTinc).catch((e: Error) => e);
    wgGo = await baseline('wireguard-go', startWireguardGo).catch((e: Error) => e);
    ipop = await measureIpop(lab, o).catch((e: Error) => e);
    ipopNo = await measureIpop(lab, o, false).catch((e: Error) => e);
    const noRepair = new Error('skipped: the floor relay has no loss repair');
    floor = loss > 0 ? noRepair : await baseline('floor', (l, h) => startFloor(l, h, 'plain')).catch((e: Error) => e);
    floorAead = loss > 0 ? noRepair : await baseline('floor + AEAD', (l, h) => startFloor(l, h, 'aead')).catch((e: Error) => e);
    floorSpin = loss > 0 ? noRepair : await baseline('floor, spinning', (l, h) => startFloor(l, h, 'spin')).catch((e: Error) => e);
  } finally {
    await lab.destroy();
  }

  const mbit = (r: PathResult) => r.tcp.bitsPerSecond / 1e6;
  const perGB = (r: PathResult) => (r.daemonCpuS === undefined ? undefined : r.daemonCpuS / (r.tcp.bytes / 1e9));
  const cell = (r: PathResult | Error, f: (r: PathResult) => number | undefined, digits: number) => {
    if (r instanceof Error) return 'n/a';
    const v = f(r);
    return v === undefined ? '—' : v.toFixed(digits);
  };
  const ratio = (f: (r: PathResult) => number | undefined, to: PathResult | Error = tinc) => {
    if (to instanceof Error || ipop instanceof Error) return 'n/a';
    const a = f(ipop), b = f(to);
    return a === undefined || b === undefined || b === 0 ? '—' : `${(a / b).toFixed(2)}×`;
  };
  const cols = [plain, tinc, wgGo, ipop, ipopNo, floor, floorAead, floorSpin];
  const row = (name: string, f: (r: PathResult) => number | undefined, digits: number, withRatio = true) =>
    `| ${name} | ${cols.map((r) => cell(r, f, digits)).join(' | ')} | ${withRatio ? `${ratio(f)} | ${ratio(f, wgGo)}` : ' | '} |`;
  const addMed = (r: PathResult) => (r === plain ? undefined : r.rtt.median - plain.rtt.median);
  const addAvg = (r: PathResult) => (r === plain ? undefined : r.rtt.avg - plain.rtt.avg);

  console.log(`VPN between two network namespaces a → b on one Linux bridge (Node ${process.version}, ${availableParallelism()} cores shared by everything; load average ${load0} at start)`);
  console.log(`Method: iperf3 TCP, 1 stream, ${o.seconds} s, rate at the receiver; ping ${o.pings} × 20 ms apart and 200 × 2 ms apart; daemon CPU = utime+stime of both VPN daemons (/proc/<pid>/stat) during the iperf3 run, per GB (10^9 bytes) received.`);
  console.log(`tinc ${tincVersion()}: router mode, UDP, default cipher (Blowfish-CBC, SHA1 MAC), 2048-bit RSA keys from tincd -K; lab underlay ${lab.subnet}${loss > 0 ? `, ${loss} % random loss on every link (nftables, per frame)` : ''}.`);
  console.log(`wireguard-go ${wireguardGoVersion()}: configured with wg, one peer each way, default MTU.`);
  console.log('ipop: TAP offload on (default); ipop (no offload): IpopConfig/Offload false. Node floor: bench/lab/floor-relay.ts (no overlay): plain, with AEAD, and plain but busy-polling. The ratio columns are ipop/tinc and ipop/wireguard-go.');
  console.log('');
  console.log(`| measurement | plain underlay | tinc ${tincVersion()} | wireguard-go | ipop | ipop (no offload) | Node floor | Node floor + AEAD | Node floor, spinning | ipop/tinc | ipop/wireguard-go |`);
  console.log(`|${' --- |'}${' ---: |'.repeat(10)}`);
  console.log(row('TCP throughput, Mbit/s', mbit, 0));
  console.log(row('TCP retransmits', (r) => r.tcp.retransmits, 0, false));
  console.log(row('ping RTT median, ms', (r) => r.rtt.median, 3));
  console.log(row('ping RTT mean, ms', (r) => r.rtt.avg, 3));
  console.log(row('added RTT vs plain (median), ms', addMed, 3));
  console.log(row('added RTT vs plain (mean), ms', addAvg, 3));
  console.log(row('ping RTT median, 200 pings 2 ms apart, ms', (r) => r.rttBusy.median, 3));
  console.log(row('added RTT vs plain, 2 ms apart (median), ms', (r) => (r === plain ? undefined : r.rttBusy.median - plain.rttBusy.median), 3));
  console.log(row('daemon CPU-s during the test (both ends)', (r) => r.daemonCpuS, 2));
  console.log(row('daemon CPU-s per GB received', perGB, 2));
  console.log('');
  for (const [name, r] of [['tinc', tinc], ['wireguard-go', wgGo]] as const) {
    if (r instanceof Error) console.log(`${name}: not available: ${r.message}`);
    else console.log(`${name}: ${((mbit(r) / mbit(plain)) * 100).toFixed(1)} % of plain throughput, +${addMed(r)!.toFixed(3)} ms median RTT, ${perGB(r)!.toFixed(1)} CPU-s per GB.`);
  }
  if (ipop instanceof Error) console.log(`ipop: not available: ${ipop.message}`);
  else console.log(`ipop: ${((mbit(ipop) / mbit(plain)) * 100).toFixed(1)} % of plain throughput, +${addMed(ipop)!.toFixed(3)} ms median RTT${perGB(ipop) === undefined ? '' : `, ${perGB(ipop)!.toFixed(1)} CPU-s per GB`}; ${ratio(mbit)} tinc's throughput, ${ratio(mbit, wgGo)} wireguard-go's.`);
  if (ipopNo instanceof Error) console.log(`ipop (no offload): not available: ${ipopNo.message}`);
  else if (!(ipop instanceof Error)) console.log(`offload: ${(mbit(ipop) / mbit(ipopNo)).toFixed(2)}× the throughput of ipop without it, ${(perGB(ipopNo)! / perGB(ipop)!).toFixed(2)}× less daemon CPU per GB.`);
  for (const [name, r] of [['Node floor', floor], ['Node floor + AEAD', floorAead], ['Node floor, spinning', floorSpin]] as const) {
    if (r instanceof Error) console.log(`${name}: not available: ${r.message}`);
    else console.log(`${name}: ${mbit(r).toFixed(0)} Mbit/s${tinc instanceof Error ? '' : ` (${(mbit(r) / mbit(tinc)).toFixed(2)}× tinc's)`}, +${addMed(r)!.toFixed(3)} ms median RTT (+${(r.rttBusy.median - plain.rttBusy.median).toFixed(3)} ms 2 ms apart)${tinc instanceof Error ? '' : `, ${(addMed(r)! / addMed(tinc)!).toFixed(1)}× tinc's added RTT`}.`);
  }
  console.log(`(${((performance.now() - t0) / 1000).toFixed(0)} s in all)`);
}

// Importing this file (for its helpers) must not start the benchmark.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
}
