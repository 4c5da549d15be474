// npm run bench:secure — cost of secure edges on 127.0.0.1 UDP, in one process and one run:
//  (a) edge setup: 200 sequential createEdge() between two SecureEdgeListeners (fresh edge
//      each time: HELLO → RETRY → HELLO+cookie → REPLY → FINISH → CONFIRM), median and p90;
//      baseline: a plain UdpEdgeListener edge until its first packet is delivered;
//  (b) one edge, secure vs plain, 1400-byte and 100-byte packets, rounds alternating the
//      order: receiver-side goodput (payload bytes), packets/s, process CPU per packet
//      (sender and receiver share the process, so it is the cost of both ends), loss.
// Sending is paced by a window: at most W packets outstanding (sent, not yet received), so
// the socket buffer is not simply overrun; after 20 ms without progress the outstanding
// packets are written off as lost and sending continues.
//
// Options: --packets N (per run, default 200000) --rounds R (default 3) --window W (default 64)
//          --handshakes H (default 200); BRUNET_AEAD=node measures the node:crypto backend.
import { randomBytes } from 'node:crypto';
import { defaultAead } from '../src/edge/aead.js';
import { groupKey } from '../src/edge/handshake.js';
import { Identity } from '../src/edge/identity.js';
import { SecureEdgeListener } from '../src/edge/secure-listener.js';
import type { Edge, EdgeListener } from '../src/transport/edge.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import { realClock } from '../src/util/clock.js';
import { cryptoRandom } from '../src/util/random.js';
import { progress } from '../src/util/progress.js';

const opt = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isSafeInteger(v) || v <= 0) { console.error(`--${name}: expected a positive integer`); process.exit(2); }
  return v;
};
const PACKETS = opt('packets', 200_000);
const ROUNDS = opt('rounds', 3);
const WINDOW = opt('window', 64);
const HANDSHAKES = opt('handshakes', 200);
const SIZES = [1400, 100];
const STALL_MS = 20;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// A progress line on a terminal (nothing extra otherwise); the step lines always.
const bar = progress();
const log = (s: string) => bar.note(s);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}
const median = (xs: number[]) => quantile(xs, 0.5);
const cpuMicros = (c: NodeJS.CpuUsage) => c.user + c.system;

const udp = () => new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom });

/** Counts what arrives on the receiving edge and wakes a waiter at a target count. */
class Counter {
  n = 0;
  bytes = 0;
  lastAt = 0;
  private waiter: { target: number; resolve: () => void } | undefined;
  attach(e: Edge): void {
    e.onPacket = (p) => {
      this.n++;
      this.bytes += p.length;
      this.lastAt = performance.now();
      if (this.waiter && this.n >= this.waiter.target) { const w = this.waiter; this.waiter = undefined; w.resolve(); }
    };
  }
  /** Resolves true when n >= target, false after ms without reaching it. */
  until(target: number, ms: number): Promise<boolean> {
    if (this.n >= target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiter = undefined; resolve(false); }, ms);
      this.waiter = { target, resolve: () => { clearTimeout(timer); resolve(true); } };
    });
  }
}

interface Run { mbps: number; pps: number; cpuUs: number; loss: number }

async function blast(send: Edge, c: Counter, size: number, n: number): Promise<Run> {
  const payload = new Uint8Array(randomBytes(size));
  gc();
  await sleep(20);
  const base = c.n, baseBytes = c.bytes;
  let sent = 0, writtenOff = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (sent < n) {
    const outstanding = Math.max(0, sent - (c.n - base) - writtenOff);
    for (let room = WINDOW - outstanding; room > 0 && sent < n; room--) { send.send(payload); sent++; }
    const target = base + sent - writtenOff - WINDOW / 2;
    if (!(await c.until(target, STALL_MS))) writtenOff = Math.max(0, sent - (c.n - base));
  }
  await c.until(base + n, 200);
  const cpu = cpuMicros(process.cpuUsage(cpu0));
  const got = c.n - base;
  const secs = (c.lastAt - t0) / 1000;
  return { mbps: ((c.bytes - baseBytes) * 8) / secs / 1e6, pps: got / secs, cpuUs: cpu / Math.max(1, got), loss: (n - got) / n };
}

async function main(): Promise<void> {
  const t00 = performance.now();
  const key = groupKey('bench:secure group secret');
  const secure = (): SecureEdgeListener => new SecureEdgeListener(udp(), {
    identity: Identity.generate(), groupKey: key, namespace: 'bench', clock: realClock, random: cryptoRandom,
  });
  const plainA = udp(), plainB = udp();
  const secA = secure(), secB = secure();
  const all: EdgeListener[] = [plainA, plainB, secA, secB];
  await Promise.all(all.map((l) => l.start()));

  // (a) edge setup.
  log(`(a) ${HANDSHAKES} sequential secure handshakes and ${HANDSHAKES} plain edges...`);
  const hsMs: number[] = [];
  let inboundSecure: Edge | undefined;
  secB.onEdge = (e) => { inboundSecure = e; };
  for (let i = 0; i < 10; i++) (await secA.createEdge(secB.localTAs()[0]!)).close('warm-up');
  await sleep(50);
  const hsCpu0 = process.cpuUsage();
  for (let i = 0; i < HANDSHAKES; i++) {
    const t0 = performance.now();
    const e = await secA.createEdge(secB.localTAs()[0]!);
    hsMs.push(performance.now() - t0);
    e.close('next');
    await new Promise((r) => setImmediate(r));
  }
  const hsCpuMs = cpuMicros(process.cpuUsage(hsCpu0)) / HANDSHAKES / 1000;
  const hsOk = secA.stats.handshakesOk, hsFailed = JSON.stringify(secA.stats.handshakesFailed);

  const plainMs: number[] = [];
  let firstPacket: (() => void) | undefined;
  plainB.onEdge = (e) => { e.onPacket = () => firstPacket?.(); };
  const plainCpu0 = process.cpuUsage();
  for (let i = 0; i < HANDSHAKES; i++) {
    const t0 = performance.now();
    const got = new Promise<void>((r) => { firstPacket = r; });
    const e = await plainA.createEdge(plainB.localTAs()[0]!);
    e.send(Uint8Array.of(1));
    await got;
    plainMs.push(performance.now() - t0);
    e.close('next');
    await new Promise((r) => setImmediate(r));
  }
  const plainCpuMs = cpuMicros(process.cpuUsage(plainCpu0)) / HANDSHAKES / 1000;
  await sleep(100);

  // (b) throughput: one long-lived edge of each kind.
  const plainRecv = new Counter(), secRecv = new Counter();
  plainB.onEdge = (e) => plainRecv.attach(e);
  const plainEdge = await plainA.createEdge(plainB.localTAs()[0]!);
  plainEdge.send(Uint8Array.of(0));
  await plainRecv.until(1, 1000);
  inboundSecure = undefined;
  secB.onEdge = (e) => { inboundSecure = e; secRecv.attach(e); };
  const secEdge = await secA.createEdge(secB.localTAs()[0]!);
  if (!inboundSecure) throw new Error('no inbound secure edge');
  const kinds = { plain: { edge: plainEdge, c: plainRecv }, secure: { edge: secEdge, c: secRecv } } as const;

  log(`(b) warm-up, then ${ROUNDS} rounds x ${SIZES.join(' and ')} bytes x plain/secure, ${PACKETS} packets each, window ${WINDOW}...`);
  for (const size of SIZES) for (const k of ['plain', 'secure'] as const) await blast(kinds[k].edge, kinds[k].c, size, Math.min(20_000, PACKETS));
  const runs: Record<string, Run[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const size of SIZES) {
      const order = (round + SIZES.indexOf(size)) % 2 === 0 ? (['plain', 'secure'] as const) : (['secure', 'plain'] as const);
      for (const k of order) {
        bar.update(`round ${round + 1}/${ROUNDS}: ${k} ${size} B, ${PACKETS} packets`);
        const r = await blast(kinds[k].edge, kinds[k].c, size, PACKETS);
        (runs[`${k} ${size}`] ??= []).push(r);
        log(`  round ${round + 1} ${k.padEnd(6)} ${String(size).padStart(4)} B: ${r.mbps.toFixed(0)} Mbit/s, ${(r.pps / 1000).toFixed(1)} kpps, ${r.cpuUs.toFixed(2)} µs CPU/pkt, loss ${(r.loss * 100).toFixed(2)} %`);
      }
    }
  }
  bar.done();
  const secStats = secB.stats;
  await Promise.all(all.map((l) => l.stop()));

  // Report.
  const m = (k: string, f: keyof Run) => median(runs[k]!.map((r) => r[f]));
  const rows: string[][] = [];
  const ratio = (s: number, p: number) => `${(s / p).toFixed(2)}×`;
  rows.push([`edge setup, median ms (${HANDSHAKES} sequential, fresh edge each)`, `${median(plainMs).toFixed(3)} (create + 1st packet)`, median(hsMs).toFixed(2), ratio(median(hsMs), median(plainMs))]);
  rows.push(['edge setup, p90 ms', quantile(plainMs, 0.9).toFixed(3), quantile(hsMs, 0.9).toFixed(2), ratio(quantile(hsMs, 0.9), quantile(plainMs, 0.9))]);
  rows.push(['edge setup, CPU ms per edge (both ends)', plainCpuMs.toFixed(3), hsCpuMs.toFixed(2), ratio(hsCpuMs, plainCpuMs)]);
  for (const size of SIZES) {
    const p = `plain ${size}`, s = `secure ${size}`;
    rows.push([`${size} B packets: goodput Mbit/s (receiver)`, m(p, 'mbps').toFixed(0), m(s, 'mbps').toFixed(0), ratio(m(s, 'mbps'), m(p, 'mbps'))]);
    rows.push([`${size} B packets: kpackets/s`, (m(p, 'pps') / 1000).toFixed(1), (m(s, 'pps') / 1000).toFixed(1), ratio(m(s, 'pps'), m(p, 'pps'))]);
    rows.push([`${size} B packets: CPU µs/packet (send + receive)`, m(p, 'cpuUs').toFixed(2), m(s, 'cpuUs').toFixed(2), ratio(m(s, 'cpuUs'), m(p, 'cpuUs'))]);
    rows.push([`${size} B packets: loss %`, (m(p, 'loss') * 100).toFixed(2), (m(s, 'loss') * 100).toFixed(2), '']);
  }
  console.log(`Secure edges vs plain UDP edges, 127.0.0.1, one process (Node ${process.version}, AEAD ${defaultAead.name}); throughput rows: median of ${ROUNDS} alternating rounds of ${PACKETS.toLocaleString('en-US')} packets, window ${WINDOW}`);
  console.log('');
  console.log('| measurement | plain UDP edge | secure edge | secure/plain |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log('');
  const big = SIZES[0]!, small = SIZES[SIZES.length - 1]!;
  const extra = (size: number) => m(`secure ${size}`, 'cpuUs') - m(`plain ${size}`, 'cpuUs');
  console.log(`Summary: a secure edge takes ${median(hsMs).toFixed(1)} ms to set up (p90 ${quantile(hsMs, 0.9).toFixed(1)} ms, ${hsCpuMs.toFixed(1)} ms CPU for both ends) ` +
    `and costs +${extra(big).toFixed(1)} µs CPU per ${big}-byte packet (${ratio(m(`secure ${big}`, 'cpuUs'), m(`plain ${big}`, 'cpuUs'))}) and +${extra(small).toFixed(1)} µs per ${small}-byte packet ` +
    `(${ratio(m(`secure ${small}`, 'cpuUs'), m(`plain ${small}`, 'cpuUs'))}), reaching ${((m(`secure ${big}`, 'mbps') / m(`plain ${big}`, 'mbps')) * 100).toFixed(0)} % / ` +
    `${((m(`secure ${small}`, 'mbps') / m(`plain ${small}`, 'mbps')) * 100).toFixed(0)} % of plain throughput.`);
  console.log(`(${hsOk} handshakes ok, failed ${hsFailed}; receiver decrypt failures ${secStats.decryptFailures}, replays ${secStats.replays}; ${((performance.now() - t00) / 1000).toFixed(0)} s in all)`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
