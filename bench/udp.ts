// npm run bench:udp — the UDP edge's socket path on 127.0.0.1, node:dgram against the addon's
// batched socket (fastPath: recvmmsg/sendmmsg, GSO/GRO where granted), in one process and one run.
// For each path and window W (packets outstanding: sent by edge a, not yet received by edge
// b), a run of N packets of S bytes: datagrams/s at the receiver, process CPU per datagram
// (both ends share the process, so it is the cost of a send plus a receive), loss, and the
// batched socket's syscalls per datagram. Rounds alternate the order of the two paths.
// Sending is refilled from the receive callback, as a protocol answering traffic would; after
// 20 ms without progress the outstanding packets are written off as lost (loss % counts what
// never arrived).
//
// Options: --packets N (per run, default 100000) --rounds R (default 3) --size S (default 1400)
//          --windows 1,16 (default)
import type { Edge } from '../src/transport/edge.js';
import { batchUnavailableReason } from '../src/transport/udp-batch.js';
import type { DatagramSocket } from '../src/transport/udp-socket.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import { realClock } from '../src/util/clock.js';
import { cryptoRandom } from '../src/util/random.js';

const arg = (name: string): string | undefined => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
const opt = (name: string, dflt: number): number => {
  const v = Number(arg(name) ?? dflt);
  if (!Number.isSafeInteger(v) || v <= 0) { console.error(`--${name}: expected a positive integer`); process.exit(2); }
  return v;
};
const PACKETS = opt('packets', 100_000);
const ROUNDS = opt('rounds', 3);
const SIZE = opt('size', 1400);
const WINDOWS = (arg('windows') ?? '1,16').split(',').map(Number);
if (WINDOWS.some((w) => !Number.isSafeInteger(w) || w <= 0)) { console.error('--windows: expected positive integers, comma-separated'); process.exit(2); }
const STALL_MS = 20;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(s + '\n');
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

interface Pair { a: UdpEdgeListener; b: UdpEdgeListener; send: Edge; onPacket: (f: (p: Uint8Array) => void) => void }
interface Run { pps: number; cpuUs: number; loss: number; syscallsPer: number }

async function pair(fastPath: boolean): Promise<Pair> {
  const a = new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom, fastPath });
  const b = new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom, fastPath });
  await Promise.all([a.start(), b.start()]);
  let handler = (_p: Uint8Array): void => {};
  let inbound: Edge | undefined;
  b.onEdge = (e) => { inbound = e; e.onPacket = (pkt) => handler(pkt); };
  const send = await a.createEdge(b.localTAs()[0]!);
  send.send(Uint8Array.of(0));
  for (let i = 0; i < 200 && !inbound; i++) await sleep(5);
  if (!inbound) throw new Error('no inbound edge');
  return { a, b, send, onPacket: (f) => { handler = f; } };
}

function syscalls(p: Pair): number {
  const s = (l: UdpEdgeListener) => (l as unknown as { socket: DatagramSocket }).socket.batch?.stats;
  const sa = s(p.a), sb = s(p.b);
  return sa && sb ? sa.sendCalls + sb.batchesIn : NaN;
}

async function blast(p: Pair, window: number, n: number): Promise<Run> {
  // Each packet carries its sequence number; outstanding = sent - (highest received + 1), so a
  // late packet never widens the window. Buffers rotate: node:dgram may still hold a queued one.
  const ring = Array.from({ length: 4 * window + 64 }, () => new Uint8Array(SIZE).fill(7));
  gc();
  await sleep(20);
  let got = 0, sent = 0, next = 0, lastProgress = 0;  // next: the sequence number after the highest received (or written off)
  let done: (() => void) | undefined;
  const refill = (): void => {
    for (let room = window - (sent - next); room > 0 && sent < n; room--) {
      const b = ring[sent % ring.length]!;
      new DataView(b.buffer).setUint32(0, sent);
      p.send.send(b);
      sent++;
    }
  };
  p.onPacket((pkt) => {
    got++;
    lastProgress = performance.now();
    const seq = new DataView(pkt.buffer, pkt.byteOffset, 4).getUint32(0);
    if (seq + 1 > next) next = seq + 1;
    if (next >= n) done?.();
    else refill();
  });
  const sys0 = syscalls(p);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  lastProgress = t0;
  const finished = new Promise<void>((r) => { done = r; });
  refill();
  for (;;) {
    const stalled = await Promise.race([finished.then(() => false), sleep(STALL_MS).then(() => true)]);
    if (!stalled || next >= n) break;
    if (performance.now() - lastProgress >= STALL_MS) { next = sent; lastProgress = performance.now(); refill(); }  // all outstanding lost
  }
  const secs = (lastProgress - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  p.onPacket(() => {});
  return { pps: got / secs, cpuUs: (cpu.user + cpu.system) / Math.max(1, got), loss: (n - got) / n, syscallsPer: (syscalls(p) - sys0) / Math.max(1, got) };
}

async function main(): Promise<void> {
  const missing = batchUnavailableReason();
  if (missing) { console.error(`bench:udp: batched UDP I/O unavailable: ${missing}`); process.exit(1); }
  const paths = { 'node:dgram': await pair(false), batched: await pair(true) };
  const offloads = (paths.batched.a as unknown as { socket: DatagramSocket }).socket.batch!.offloads;
  log(`batched socket offloads: GRO ${offloads.gro}, GSO ${offloads.gso}`);
  const results = new Map<string, Run[]>();
  for (const w of WINDOWS) for (const name of Object.keys(paths)) await blast(paths[name as keyof typeof paths], w, Math.min(PACKETS, 5000)); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['node:dgram', 'batched'] : ['batched', 'node:dgram'];
    for (const w of WINDOWS) {
      for (const name of order) {
        const run = await blast(paths[name as keyof typeof paths], w, PACKETS);
        log(`round ${r + 1} W=${w} ${name}: ${Math.round(run.pps)} datagrams/s, ${run.cpuUs.toFixed(2)} µs CPU per datagram, loss ${(run.loss * 100).toFixed(2)} %`);
        const key = `${w}|${name}`;
        results.set(key, [...(results.get(key) ?? []), run]);
      }
    }
  }
  console.log(`\n${SIZE}-byte datagrams on 127.0.0.1, ${PACKETS} per run, median of ${ROUNDS} rounds (CPU: both ends, one process)\n`);
  console.log('| in flight | path | datagrams/s | CPU µs per datagram | syscalls per datagram | loss % |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const w of WINDOWS) {
    for (const name of Object.keys(paths)) {
      const runs = results.get(`${w}|${name}`)!;
      const sys = median(runs.map((x) => x.syscallsPer));
      console.log(`| ${w} | ${name} | ${Math.round(median(runs.map((x) => x.pps)))} | ${median(runs.map((x) => x.cpuUs)).toFixed(2)} | ${Number.isNaN(sys) ? '2 (one send, one receive)' : sys.toFixed(2)} | ${(median(runs.map((x) => x.loss)) * 100).toFixed(2)} |`);
    }
    const d = results.get(`${w}|node:dgram`)!, bt = results.get(`${w}|batched`)!;
    console.log(`| ${w} | ratio batched / node:dgram | ${(median(bt.map((x) => x.pps)) / median(d.map((x) => x.pps))).toFixed(2)}× | ${(median(bt.map((x) => x.cpuUs)) / median(d.map((x) => x.cpuUs))).toFixed(2)}× | | |`);
  }
  for (const p of Object.values(paths)) await Promise.all([p.a.stop(), p.b.stop()]);
}

main().catch((e) => { console.error(`bench:udp: ${e instanceof Error ? e.message : String(e)}`); process.exit(1); });
