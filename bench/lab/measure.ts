// How bench:vpn measures one path between two namespaces of a lab: ping RTT (20 ms and 2 ms
// apart), iperf3 TCP throughput, and the CPU the VPN daemons use during the iperf3 run.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { listening } from './baselines.js';
import { pingArgv, pingTimes, stopProcess, waitFor, type Lab } from './netns.js';

const IPERF_PORT = 5201;
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

/**
 * iperf3 TCP, one stream, `seconds` s: server (one-off) in host `server` bound to listenIp (default
 * serverIp; another where addresses are translated on the way), client in `client` connecting to serverIp.
 */
export async function iperf(lab: Lab, client: string, server: string, serverIp: string, seconds: number, onStart?: () => void, listenIp = serverIp): Promise<IperfResult> {
  const srv = lab.spawn(server, ['iperf3', '-s', '-1', '-B', listenIp, '-p', String(IPERF_PORT)]);
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

/** ping then iperf3 from → to (addressed as ip; its server bound to listenIp, default ip), with the CPU of `pids` over the iperf3 run. */
export async function measurePath(lab: Lab, label: string, from: string, to: string, ip: string, o: BenchOptions, pids: number[] = [], listenIp = ip): Promise<PathResult> {
  const rtt = await pingRtt(lab, from, ip, o.pings);
  log(`${label}: ping ${ip} median ${rtt.median.toFixed(3)} ms, mean ${rtt.avg.toFixed(3)} ms (${rtt.received}/${rtt.sent})`);
  const rttBusy = await pingRtt(lab, from, ip, 200, 2);
  log(`${label}: ping ${ip} 2 ms apart: median ${rttBusy.median.toFixed(3)} ms`);
  let cpu0 = 0;
  const tcp = await iperf(lab, from, to, ip, o.seconds, () => { cpu0 = cpuSeconds(pids); }, listenIp);
  const daemonCpuS = pids.length > 0 ? cpuSeconds(pids) - cpu0 : undefined;
  log(`${label}: TCP ${(tcp.bitsPerSecond / 1e6).toFixed(0)} Mbit/s${daemonCpuS === undefined ? '' : `, daemons ${daemonCpuS.toFixed(2)} CPU-s`}`);
  return { label, tcp, rtt, rttBusy, daemonCpuS };
}
