// npm run bench:vpn-send — the VPN's send path in one process, without sockets: frames laid
// out as the TAP addon delivers them (one Buffer per batch), then what FramePath.send does
// for each: Router.send (FastPath false: encodeAh copies the frame behind a new header, the
// secure edge seals into a second new buffer) or Router.sendLent (FastPath true: both headers
// and the tag written into the room the TAP left, sealed in place), down to the transport,
// which here only counts (the UDP edge's socket calls are not measured).
//
// Per path and size: CPU µs per packet; ArrayBuffer bytes allocated per packet (growth of
// process.memoryUsage().arrayBuffers over a burst right after a forced GC, as --trace-gc
// would show it); and minor/major GCs and GC pause per 10,000 packets (PerformanceObserver).
// Sizes: a 1400-byte frame (batches of 32) and a 64 KB super-packet with its offload header
// (batches of 8). Rounds alternate the order of the paths.
//
// Options: --packets N (per run, default 20000) --rounds R (default 3) --path copy|in-place
// (one path only; default both).
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { Address } from '../src/address/address.js';
import type { Connection } from '../src/connection/connection.js';
import type { ConnectionTable } from '../src/connection/table.js';
import { groupKey } from '../src/edge/handshake.js';
import { Identity } from '../src/edge/identity.js';
import type { SecureEdge } from '../src/edge/secure-edge.js';
import { SecureEdgeListener } from '../src/edge/secure-listener.js';
import { Mode, Payload } from '../src/routing/ah-wire.js';
import { Router } from '../src/routing/router.js';
import type { Room } from '../src/transport/edge.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { realClock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/log.js';
import { cryptoRandom } from '../src/util/random.js';
import { FRAME_ROOM } from '../src/vpn/frame-path.js';

const opt = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isSafeInteger(v) || v <= 0) { console.error(`--${name}: expected a positive integer`); process.exit(2); }
  return v;
};
const PACKETS = opt('packets', 20_000);
const ROUNDS = opt('rounds', 3);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) { console.error('run with node --expose-gc (npm run bench:vpn-send does)'); process.exit(2); }
const log = (s: string) => process.stderr.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]!; };

type PathName = 'copy (FastPath false)' | 'in place (FastPath true)';
const ALL_PATHS: PathName[] = ['copy (FastPath false)', 'in place (FastPath true)'];
const only = (() => { const i = process.argv.indexOf('--path'); return i > 0 ? process.argv[i + 1] : undefined; })();
if (only !== undefined && only !== 'copy' && only !== 'in-place') { console.error('--path: expected copy or in-place'); process.exit(2); }
const PATHS = only === undefined ? ALL_PATHS : ALL_PATHS.filter((p) => p.startsWith(only === 'copy' ? 'copy' : 'in place'));
const SIZES = [{ name: '1400 B frame', bytes: 1400, batch: 32, ptype: Payload.Ip }, { name: '64 KB super-packet', bytes: 10 + 65_000, batch: 8, ptype: Payload.IpOffload }];

/** An established secure edge whose transport only counts what it is given. */
async function securedEdge(): Promise<{ edge: SecureEdge; sent: { n: number; bytes: number } }> {
  const net = new MemoryNetwork();
  const key = groupKey('bench:vpn-send');
  const mk = () => new SecureEdgeListener(net.listener(), { identity: Identity.generate(), groupKey: key, namespace: 'bench', clock: realClock, random: cryptoRandom });
  const a = mk(), b = mk();
  await a.start(); await b.start();
  const edge = await a.createEdge(b.localTAs()[0]!) as SecureEdge;
  const sent = { n: 0, bytes: 0 };
  // From here on the edge's packets stop at its transport: counted, not delivered.
  edge.inner.send = (p) => { sent.n++; sent.bytes += p.length; };
  return { edge, sent };
}

/** n frames of `bytes` laid out as the TAP addon delivers a batch: one Buffer, with `room` around each frame. */
function tapBatch(template: Uint8Array, n: number, room: Room | undefined): Uint8Array[] {
  const head = room?.head ?? 0, tail = room?.tail ?? 0, slot = head + template.length + tail;
  const buf = Buffer.allocUnsafe(slot * n); // the addon's Napi::Buffer::Copy of its arena
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    buf.set(template, i * slot + head);
    frames.push(buf.subarray(i * slot + head, i * slot + head + template.length));
  }
  return frames;
}

interface Result { cpuUs: number; allocBytes: number; minorGc: number; majorGc: number; gcMs: number }

const gcs = { minor: 0, major: 0, ms: 0 };
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gcs.minor++; else gcs.major++;
    gcs.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

async function run(path: PathName, size: typeof SIZES[number], router: Router, conn: Connection, dst: Address, n: number): Promise<Result> {
  const template = new Uint8Array(randomBytes(size.bytes));
  const room = path === 'in place (FastPath true)' ? FRAME_ROOM : undefined;
  const sendBatch = (frames: Uint8Array[]) => {
    for (const f of frames) {
      if (room) router.sendLent(dst, Mode.Exact, size.ptype, f, conn, room);
      else router.send(dst, Mode.Exact, size.ptype, f, conn);
    }
  };
  // Allocation: a burst of about 2 MB right after a full GC whose ArrayBuffers the sweeper has
  // freed (it runs concurrently), too small to start another GC.
  const burst = Math.max(size.batch, Math.floor((2 << 20) / size.bytes / size.batch) * size.batch);
  await settle();
  const ab0 = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < burst; i += size.batch) sendBatch(tapBatch(template, size.batch, room));
  const allocBytes = (process.memoryUsage().arrayBuffers - ab0) / burst;
  await settle();
  const g0 = { ...gcs };
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i += size.batch) sendBatch(tapBatch(template, size.batch, room));
  const c = process.cpuUsage(cpu0);
  await sleep(20); // GC entries arrive asynchronously
  const per = 10_000 / n;
  return { cpuUs: (c.user + c.system) / n, allocBytes, minorGc: (gcs.minor - g0.minor) * per, majorGc: (gcs.major - g0.major) * per, gcMs: (gcs.ms - g0.ms) * per };
}

/** A full GC, its entry observed and its ArrayBuffers freed. */
async function settle(): Promise<void> {
  gc!();
  await sleep(50);
}

async function main(): Promise<void> {
  const { edge, sent } = await securedEdge();
  const peer = Address.random(cryptoRandom);
  const conn = { address: peer, edge } as unknown as Connection;
  const router = new Router(Address.random(cryptoRandom), {} as ConnectionTable, () => 64, silentLogger);
  const results = new Map<string, Result[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const size of SIZES) {
      const n = size.bytes > 10_000 ? Math.max(size.batch, Math.floor(PACKETS / 10 / size.batch) * size.batch) : PACKETS;
      for (const path of r % 2 === 0 ? PATHS : [...PATHS].reverse()) {
        const before = sent.n;
        const res = await run(path, size, router, conn, peer, n);
        if (sent.n - before < n) throw new Error(`${path}: only ${sent.n - before} of ${n} packets reached the transport`);
        const key = `${size.name}|${path}`;
        results.set(key, [...(results.get(key) ?? []), res]);
        log(`round ${r + 1} ${size.name} ${path}: ${res.cpuUs.toFixed(2)} µs/packet, ${Math.round(res.allocBytes)} B allocated/packet`);
      }
    }
  }
  console.log(`\nVPN send path (TAP batch → router → secure edge → transport), median of ${ROUNDS} rounds, AEAD ${(await import('../src/edge/aead.js')).defaultAead.name}\n`);
  console.log('| size | path | CPU µs/packet | ArrayBuffer B allocated/packet | minor GCs /10k packets | major GCs /10k | GC ms /10k |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const size of SIZES) for (const path of PATHS) {
    const rs = results.get(`${size.name}|${path}`)!;
    const m = (f: (x: Result) => number, d: number) => median(rs.map(f)).toFixed(d);
    console.log(`| ${size.name} | ${path} | ${m((x) => x.cpuUs, 2)} | ${m((x) => x.allocBytes, 0)} | ${m((x) => x.minorGc, 1)} | ${m((x) => x.majorGc, 1)} | ${m((x) => x.gcMs, 1)} |`);
  }
  edge.close();
}

main().catch((e) => { console.error((e as Error).message); process.exit(1); });
