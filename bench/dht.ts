// npm run bench:dht — DHT latency, throughput and durability on 64 nodes in one process on
// loopback UDP (127.0.0.1 only), each node with an in-memory TableStore. Default node timers
// except the link timeout (pingAfterMs 1000, timeoutMs 3000), so a crash is detected in seconds.
//
// 1. Latency: 2,000 puts (64-byte values, distinct keys, random issuing node) with 16 and with
//    128 requests in flight, then 2,000 gets of those keys the same way (each get must return
//    exactly the value that was put; anything else is a miss). A 1-in-flight row (200 ops) is
//    an unloaded baseline. Rows also show RPC resends/timeouts, kernel UDP receive-buffer drops
//    and event-loop lag, which is where the tail latency comes from.
// 2. Durability: 1,000 fresh keys are put, then 16 random nodes (never node 0) crash — their
//    UDP sockets close under them, no goodbye. Measured: the time until no survivor still has a
//    connection to a crashed node, the time until the survivors' ring is
//    consistent again, how many keys a get finds right then, how many are lost at the end, and
//    the time until every key has a majority (5 of 8) of its replica points in live nodes'
//    stores ("full replica repair"; stores are read directly). Also reported: the time until
//    every replica point is held by both live nodes bracketing it (the steady-state layout).
// Everything is bounded; a watchdog ends the run if it ever exceeds 4 minutes.
// Environment: BENCH_NODES (64), BENCH_OPS (2000), BENCH_INFLIGHT (1,16,128), BENCH_DURABLE_KEYS
// (1000), BENCH_DURABILITY=0 (latency rows only), BENCH_PROFILE=FILE (a .cpuprofile of the get rows).
import { readFileSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { DhtService } from '../src/dht/service.js';
import { TableStore } from '../src/dht/store.js';
import { majority, replicaPoints } from '../src/dht/placement.js';
import { Node } from '../src/node/node.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import { realClock } from '../src/util/clock.js';
import { cryptoRandom } from '../src/util/random.js';
import { consistent, wrongNeighbours } from './ring-check.js';
import { progress } from '../src/util/progress.js';

const N = Number(process.env.BENCH_NODES ?? 64);
const OPS = Number(process.env.BENCH_OPS ?? 2000);
// 1 in flight is an unloaded baseline (fewer operations); 16 and 128 are the measured levels.
const LEVELS = (process.env.BENCH_INFLIGHT ?? '1,16,128').split(',').map(Number);
const DURABLE_KEYS = Number(process.env.BENCH_DURABLE_KEYS ?? 1000);
// BENCH_DURABILITY=0 skips the crash part (for profiling the latency rows alone).
const DURABILITY = process.env.BENCH_DURABILITY !== '0';
// BENCH_PROFILE=FILE writes a CPU profile (.cpuprofile) of the get rows alone.
const PROFILE = process.env.BENCH_PROFILE;
const CRASH = Math.round(N / 4);
const DEGREE = 8;
const LINK = { pingAfterMs: 1000, timeoutMs: 3000 };
const FORM_LIMIT_MS = 60_000;
const HEAL_LIMIT_MS = 45_000;
const REPAIR_LIMIT_MS = 120_000;
const TTL = 3600;
const POLL_MS = 500;
const STRICT_GRACE_MS = 15_000;
const BASELINE_OPS = 200;
const LAG_RESOLUTION_MS = 10;
const QUIET_LIMIT_MS = 8000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// A progress line on a terminal (nothing extra otherwise); the phase lines always.
const bar = progress();
const log = (s: string) => bar.note(s);
const enc = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;
const ms = (x: number) => +x.toFixed(2);
const sec = (x: number) => +(x / 1000).toFixed(2);

const watchdog = setTimeout(() => { console.error('bench:dht: watchdog — exceeded 4 minutes, aborting'); process.exit(2); }, 240_000);
watchdog.unref();

interface Member { node: Node; dht: DhtService }

async function waitUntil(cond: () => boolean, limitMs: number, stepMs = 50): Promise<boolean> {
  const end = performance.now() + limitMs;
  while (performance.now() < end) {
    if (cond()) return true;
    await sleep(stepMs);
  }
  return cond();
}

function pct(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Linux loopback drops: UDP datagrams discarded because a socket's receive buffer was full. */
function udpDrops(): number {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0]!.split(/\s+/), vals = lines[1]!.split(/\s+/).map(Number);
    return vals[names.indexOf('RcvbufErrors')] ?? 0;
  } catch { return NaN; }
}

function rpcStats(ms: Member[]): { resends: number; timeouts: number; requests: number; hops: number; delivered: number } {
  let resends = 0, timeouts = 0, requests = 0, hops = 0, delivered = 0;
  for (const m of ms) {
    const r = m.node.rpc.stats, s = m.node.router.stats;
    resends += r.resends; timeouts += r.timeouts; requests += r.requests;
    hops += s.forwarded; delivered += s.delivered;
  }
  return { resends, timeouts, requests, hops, delivered };
}

/** Waits (bounded) until no node has an RPC outstanding, so one row's stragglers don't land in the next. */
async function quiesce(ms: Member[]): Promise<void> {
  const pending = () => ms.reduce((s, m) => s + (m.node.rpc as unknown as { pending: Map<number, unknown> }).pending.size, 0);
  await waitUntil(() => pending() === 0, QUIET_LIMIT_MS, 100);
}

interface PhaseResult {
  lat: number[]; ok: number; miss: number; err: number; wallMs: number;
  resends: number; timeouts: number; drops: number; lagP99: number; lagMax: number; slow: number;
  /** Per operation: RPC requests sent, routed hops (datagrams a router sent on), routed packets delivered. */
  requests: number; hops: number; delivered: number;
}

/** Runs `count` operations with `inflight` workers; op resolves true (ok) / false (miss), or throws (error). */
async function phase(members: Member[], count: number, inflight: number, op: (i: number) => Promise<boolean>): Promise<PhaseResult> {
  const lat: number[] = [];
  let ok = 0, miss = 0, err = 0, next = 0;
  await quiesce(members);
  const r0 = rpcStats(members), d0 = udpDrops();
  const h = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  h.enable();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, async () => {
    for (let i = next++; i < count; i = next++) {
      const s = performance.now();
      try { if (await op(i)) ok++; else miss++; } catch { err++; }
      lat.push(performance.now() - s);
      bar.update(`${lat.length}/${count} operations, ${err} errors`);
    }
  }));
  const wallMs = performance.now() - t0;
  bar.done();
  h.disable();
  const r1 = rpcStats(members);
  lat.sort((a, b) => a - b);
  return {
    lat, ok, miss, err, wallMs, resends: r1.resends - r0.resends, timeouts: r1.timeouts - r0.timeouts,
    requests: (r1.requests - r0.requests) / count, hops: (r1.hops - r0.hops) / count, delivered: (r1.delivered - r0.delivered) / count,
    drops: udpDrops() - d0,
    // The histogram measures the whole timer interval; the lag is what exceeds the resolution.
    lagP99: Math.max(0, h.percentile(99) / 1e6 - LAG_RESOLUTION_MS), lagMax: Math.max(0, h.max / 1e6 - LAG_RESOLUTION_MS), slow: lat.filter((x) => x >= 1000).length,
  };
}

function row(op: string, inflight: number, r: PhaseResult): Record<string, string | number> {
  return {
    op, 'in flight': inflight, ops: r.lat.length, ok: r.ok, 'misses': r.miss, errors: r.err,
    'ops/s': Math.round(r.lat.length / (r.wallMs / 1000)), 'p50 ms': ms(pct(r.lat, 0.5)), 'p99 ms': ms(pct(r.lat, 0.99)),
    'max ms': ms(r.lat[r.lat.length - 1] ?? NaN), 'ops ≥ 1 s': r.slow,
    'RPCs/op': +r.requests.toFixed(1), 'hops/op': +r.hops.toFixed(1), 'delivered/op': +r.delivered.toFixed(1), 'RPC resends': r.resends, 'RPC timeouts': r.timeouts,
    'UDP rcvbuf drops': Number.isNaN(r.drops) ? 'n/a' : r.drops, 'loop lag p99 ms': ms(r.lagP99), 'loop lag max ms': ms(r.lagMax),
  };
}

function table(rows: Record<string, string | number>[]): string {
  const keys = Object.keys(rows[0]!);
  return [`| ${keys.join(' | ')} |`, `| ${keys.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${keys.map((k) => r[k]).join(' | ')} |`)].join('\n');
}

/** Replica-point placement of the durability keys in the live nodes' stores, read directly. */
async function coverage(live: Member[], points: string[][]): Promise<{ majorityKeys: number; fullKeys: number; pointsHeld: number; pointsFull: number; leastHeld: number; heldPerKey: number[] }> {
  const wanted = new Set(points.flat());
  const holders = new Map<string, Set<Member>>();
  for (const m of live) {
    for await (const e of m.dht.server.store.all()) {
      const k = hex(e.key);
      if (!wanted.has(k)) continue;
      let s = holders.get(k);
      if (!s) holders.set(k, s = new Set());
      s.add(m);
    }
  }
  // The two live nodes bracketing a point are the ones that must hold it once repair is done.
  const sorted = [...live].sort((a, b) => (a.node.address.value < b.node.address.value ? -1 : 1));
  const vals = sorted.map((m) => m.node.address.value);
  const brackets = (p: bigint): [Member, Member] => {
    let lo = 0, hi = vals.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (vals[mid]! < p) lo = mid + 1; else hi = mid; }
    return [sorted[lo % sorted.length]!, sorted[(lo - 1 + sorted.length) % sorted.length]!];
  };
  let majorityKeys = 0, fullKeys = 0, pointsHeld = 0, pointsFull = 0, leastHeld = DEGREE;
  const heldPerKey: number[] = [];
  for (const ps of points) {
    let held = 0, full = 0;
    for (const p of ps) {
      const s = holders.get(p);
      if (s && s.size > 0) held++;
      const [a, b] = brackets(BigInt('0x' + p));
      if (s && s.has(a) && s.has(b)) full++;
    }
    pointsHeld += held; pointsFull += full;
    heldPerKey.push(held);
    leastHeld = Math.min(leastHeld, held);
    if (held >= majority(DEGREE)) majorityKeys++;
    if (full === DEGREE) fullKeys++;
  }
  return { majorityKeys, fullKeys, pointsHeld, pointsFull, leastHeld, heldPerKey };
}

async function main(): Promise<void> {
  // ---- formation ----
  const t0 = performance.now();
  const members: Member[] = [];
  for (let i = 0; i < N; i++) {
    bar.update(`ring of ${N}: starting node ${i + 1}`);
    const l = new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom });
    const node = new Node({ namespace: 'bench-dht', listeners: [l], remoteTAs: i === 0 ? [] : members[0]!.node.info().tas, type: 'MultiNode', link: LINK });
    await node.start();
    const store = TableStore.memory({ clock: realClock });
    await store.open();
    members.push({ node, dht: new DhtService(node, store) });
  }
  const nodes = members.map((m) => m.node);
  const formed = await waitUntil(() => { bar.update(`ring of ${N}: forming, ${sec(performance.now() - t0)} s`); return consistent(nodes); }, FORM_LIMIT_MS, 100);
  bar.done();
  const formMs = performance.now() - t0;
  log(`ring of ${N}: ${formed ? 'consistent' : 'NOT consistent'} after ${sec(formMs)} s`);
  if (!formed) { console.log(`bench:dht: ring of ${N} not consistent within ${FORM_LIMIT_MS / 1000} s; aborting`); process.exit(1); }
  const conns = nodes.reduce((s, n) => s + n.table.size, 0) / N;
  const pick = (from: Member[]) => from[cryptoRandom.int(from.length)]!;
  const run = hex(cryptoRandom.bytes(4));

  // ---- latency / throughput ----
  const latencyRows: Record<string, string | number>[] = [];
  let missesOfStored = 0; // gets that missed (or failed) on a key whose put had succeeded
  const written = new Map<number, { keys: Uint8Array[]; values: Uint8Array[]; ok: boolean[] }>();
  for (const k of LEVELS) {
    const count = k === 1 ? BASELINE_OPS : OPS;
    const keys = Array.from({ length: count }, (_, i) => enc(`bench-${run}-${k}-${i}`));
    const values = keys.map(() => cryptoRandom.bytes(64));
    const ok = keys.map(() => false);
    log(`put x${count}, ${k} in flight...`);
    const r = await phase(members, count, k, async (i) => { await pick(members).dht.dht.put(keys[i]!, values[i]!, TTL); ok[i] = true; return true; });
    latencyRows.push(row('put', k, r));
    log(JSON.stringify(latencyRows.at(-1)));
    written.set(k, { keys, values, ok });
  }
  const prof = PROFILE ? new Session() : undefined;
  if (prof) { prof.connect(); await prof.post('Profiler.enable'); await prof.post('Profiler.start'); }
  for (const k of LEVELS) {
    const w = written.get(k)!;
    log(`get x${w.keys.length}, ${k} in flight...`);
    let unput = 0;
    const r = await phase(members, w.keys.length, k, async (i) => {
      const vs = await pick(members).dht.dht.get(w.keys[i]!).catch((e) => { if (w.ok[i]) missesOfStored++; throw e; });
      const hit = vs.length === 1 && sameBytes(vs[0]!.value, w.values[i]!);
      if (!hit) { if (w.ok[i]) missesOfStored++; else unput++; }
      return hit;
    });
    latencyRows.push(row('get', k, r));
    if (unput > 0) latencyRows.at(-1)!.misses = `${r.miss} (${unput} of them: put had failed)`;
    log(JSON.stringify(latencyRows.at(-1)));
  }

  if (prof) { const { profile } = await prof.post('Profiler.stop'); writeFileSync(PROFILE!, JSON.stringify(profile)); prof.disconnect(); }
  if (!DURABILITY) {
    console.log(`## DHT benchmark: ${N} nodes (durability part skipped: BENCH_DURABILITY=0)\n\n${table(latencyRows)}`);
    process.exit(0);
  }

  // ---- durability ----
  const dKeys = Array.from({ length: DURABLE_KEYS }, (_, i) => enc(`durable-${run}-${i}`));
  const dValues = dKeys.map(() => cryptoRandom.bytes(64));
  const dPoints = dKeys.map((k) => replicaPoints(k, DEGREE).map((p) => hex(p.bytes)));
  log(`durability: put x${DURABLE_KEYS}...`);
  const dPut = await phase(members, DURABLE_KEYS, 64, async (i) => { await pick(members).dht.dht.put(dKeys[i]!, dValues[i]!, TTL); return true; });
  await quiesce(members); // let the last replica writes and mirror copies land
  const before = await coverage(members, dPoints);

  const dead = new Set<number>();
  while (dead.size < CRASH) dead.add(1 + cryptoRandom.int(N - 1));
  const live = members.filter((_, i) => !dead.has(i));
  const liveNodes = live.map((m) => m.node);
  log(`crashing ${CRASH} nodes: ${[...dead].sort((a, b) => a - b).join(', ')}`);
  const tc = performance.now();
  // A crash: the socket closes under the node, no close datagram goes out.
  for (const i of dead) for (const l of members[i]!.node.listeners) (l as unknown as { socket: { close(): void } }).socket.close();
  const since = () => performance.now() - tc;

  // Replica placement is polled (stores read directly) from the crash on, also while the
  // survivors are still detecting the failure.
  let majorityMs: number | undefined, fullMs: number | undefined, lastPoll = -Infinity, covMs = 0;
  let cov = await coverage(live, dPoints);
  const atCrash = cov;
  const poll = async () => {
    const t = since();
    const s = performance.now();
    cov = await coverage(live, dPoints);
    covMs = Math.max(covMs, performance.now() - s);
    lastPoll = performance.now();
    if (majorityMs === undefined && cov.majorityKeys === DURABLE_KEYS) majorityMs = t;
    if (fullMs === undefined && cov.fullKeys === DURABLE_KEYS) fullMs = t;
  };
  if (cov.majorityKeys === DURABLE_KEYS) majorityMs = 0;

  const deadKeys = new Set([...dead].map((i) => members[i]!.node.address.key));
  let detectMs: number | undefined;
  let healed = false;
  while (since() < HEAL_LIMIT_MS) {
    if (detectMs === undefined && liveNodes.every((n) => [...n.table.all()].every((c) => !deadKeys.has(c.address.key)))) detectMs = since();
    if (consistent(liveNodes)) { healed = true; break; }
    if (performance.now() - lastPoll >= POLL_MS) await poll();
    await sleep(50);
  }
  const healMs = since();
  // Shortcuts to crashed nodes may outlive the ring repair by a moment; keep watching (bounded).
  if (detectMs === undefined) await waitUntil(() => liveNodes.every((n) => [...n.table.all()].every((c) => !deadKeys.has(c.address.key))), 10_000).then((ok) => { if (ok) detectMs = since(); });
  const wrongAtLimit = healed ? 0 : wrongNeighbours(liveNodes);
  log(`survivors' ring ${healed ? 'consistent' : 'NOT consistent'} after ${sec(healMs)} s`);
  await poll();
  const atHeal = cov;

  const unreadable = new Set<number>();
  const readGet = async (i: number) => {
    const vs = await pick(live).dht.dht.get(dKeys[i]!).catch((e) => { unreadable.add(i); throw e; });
    const hit = vs.some((v) => sameBytes(v.value, dValues[i]!));
    if (hit) unreadable.delete(i); else unreadable.add(i);
    return hit;
  };
  const firstRead = await phase(live, DURABLE_KEYS, 64, readGet);
  const firstReadDoneMs = since();
  log(`read right after ${healed ? 'healing' : 'the heal limit'}: ${firstRead.ok}/${DURABLE_KEYS} (${sec(firstRead.wallMs)} s)`);

  // Keep polling until every key has a majority of its points on live nodes (bounded by
  // REPAIR_LIMIT_MS from the crash), and — the stricter layout — every point is on both of its
  // live bracketing nodes (given up STRICT_GRACE_MS after the read pass if still incomplete).
  while (since() < REPAIR_LIMIT_MS) {
    await poll();
    if (majorityMs !== undefined && (fullMs !== undefined || since() - firstReadDoneMs > STRICT_GRACE_MS)) break;
    await sleep(POLL_MS);
  }
  const endCov = cov;
  const pollEndMs = since();
  unreadable.clear();
  const finalRead = await phase(live, DURABLE_KEYS, 64, readGet);
  const lost = DURABLE_KEYS - finalRead.ok;
  log(`final read: ${finalRead.ok}/${DURABLE_KEYS}; coverage poll took up to ${Math.round(covMs)} ms`);

  // ---- report ----
  const out: string[] = [];
  out.push(`## DHT benchmark: ${N} nodes, one process, loopback UDP (127.0.0.1), in-memory stores`);
  out.push('');
  out.push(`Default node timers except the link timeout: link { pingAfterMs: ${LINK.pingAfterMs}, timeoutMs: ${LINK.timeoutMs} } (failure detection in about 3 s).`);
  out.push(`Replication degree ${DEGREE}, majority ${majority(DEGREE)}; 64-byte values, distinct keys, TTL ${TTL} s, each request issued from a random node.`);
  out.push(`Ring consistent after ${sec(formMs)} s; ${conns.toFixed(1)} connections per node when measuring started.`);
  out.push('');
  out.push(`### Latency and throughput (${OPS} operations per row, ${BASELINE_OPS} for the 1-in-flight baseline; gets read the keys put at the same in-flight level)`);
  out.push('');
  out.push(table(latencyRows));
  out.push('');
  out.push('All nodes share one event loop on this machine, so ops/s is the whole process\'s capacity and, once it saturates, latency ≈ in-flight ÷ ops/s (queueing). Each row starts once no RPC is outstanding anywhere (bounded wait). RPC resends/timeouts are summed over all nodes; UDP rcvbuf drops are the kernel\'s Udp RcvbufErrors delta (datagrams dropped because a socket\'s receive buffer was full); loop lag is the event-loop delay during the row (beyond the 10 ms sampling interval).');
  out.push('');
  out.push(`### Durability: ${DURABLE_KEYS} keys, then ${CRASH} of ${N} nodes (${Math.round(100 * CRASH / N)} %, random, not node 0) crash`);
  out.push('');
  const fmtT = (x: number | undefined, limit: number) => (x === undefined ? `not reached within ${limit / 1000} s` : `${sec(x)} s`);
  const pts = DURABLE_KEYS * DEGREE;
  const dRows: Record<string, string | number>[] = [
    { measure: `keys put before the crash (64 in flight; ${dPut.err} failed; p50 ${ms(pct(dPut.lat, 0.5))} ms, p99 ${ms(pct(dPut.lat, 0.99))} ms)`, value: `${dPut.ok} / ${DURABLE_KEYS}` },
    { measure: 'replica points on both bracketing nodes, before the crash', value: `${before.pointsFull} / ${pts}` },
    { measure: `keys with fewer than ${DEGREE} of their points stored anywhere, before the crash (puts succeed at ${majority(DEGREE)})`, value: `${before.heldPerKey.filter((h) => h < DEGREE).length} (fewest: ${before.leastHeld})` },
    { measure: 'replica points still held by some live node, right at the crash', value: `${atCrash.pointsHeld} / ${pts} (fewest for one key: ${atCrash.leastHeld} of ${DEGREE})` },
    { measure: 'time until no survivor has a connection to a crashed node (link timeout), from the crash', value: detectMs === undefined ? `NOT within ${HEAL_LIMIT_MS / 1000} s` : `${sec(detectMs)} s` },
    { measure: 'time until the survivors\' ring is consistent again (true 2 neighbours per side everywhere), from the crash', value: healed ? `${sec(healMs)} s` : `NOT within ${HEAL_LIMIT_MS / 1000} s (${wrongAtLimit} of ${liveNodes.length} survivors still with a wrong near neighbour)` },
    { measure: 'replica points on both live bracketing nodes, at that moment', value: `${atHeal.pointsFull} / ${pts}` },
    { measure: `keys readable right after that (one get per key from a random survivor, 64 in flight; ${firstRead.miss} misses, ${firstRead.err} errors)`, value: `${firstRead.ok} / ${DURABLE_KEYS}` },
    { measure: 'get latency of that read pass, p50 / p99 / max', value: `${ms(pct(firstRead.lat, 0.5))} / ${ms(pct(firstRead.lat, 0.99))} / ${ms(firstRead.lat.at(-1) ?? NaN)} ms (pass done ${sec(firstReadDoneMs)} s after the crash)` },
    { measure: `time to full replica repair (every key has ≥ ${majority(DEGREE)} of ${DEGREE} replica points in live nodes' stores), from the crash`, value: fmtT(majorityMs, REPAIR_LIMIT_MS) + (majorityMs === 0 ? ' (already true at the crash: no key had 4 or more of its 8 points only on crashed nodes)' : '') },
    { measure: 'time until every replica point is on both of its live bracketing nodes, from the crash', value: fullMs === undefined ? `not reached by ${sec(pollEndMs)} s (${endCov.pointsFull} / ${pts} points)` : `${sec(fullMs)} s` },
    { measure: `keys lost (not readable in a final read pass at ${sec(pollEndMs)} s; ${finalRead.err} errors)`, value: lost },
    ...(lost > 0 ? [{ measure: 'lost keys: replica points held before the crash → right at the crash → at the end', value: [...unreadable].slice(0, 10).map((i) => `${before.heldPerKey[i]} → ${atCrash.heldPerKey[i]} → ${endCov.heldPerKey[i]}`).join('; ') }] : []),
  ];
  out.push(table(dRows));
  out.push('');
  out.push('### Targets');
  out.push('');
  const gets = latencyRows.filter((r) => r.op === 'get' && r['in flight'] !== 1);
  for (const g of gets) {
    out.push(`- get p50 ≤ 5 ms with ${g['in flight']} in flight: ${g['p50 ms']} ms — ${(g['p50 ms'] as number) <= 5 ? 'PASS' : 'FAIL'}`);
    out.push(`- get p99 ≤ 50 ms with ${g['in flight']} in flight: ${g['p99 ms']} ms — ${(g['p99 ms'] as number) <= 50 ? 'PASS' : 'FAIL'}`);
  }
  const base = latencyRows.find((r) => r.op === 'get' && r['in flight'] === 1);
  if (base) out.push(`- for reference, unloaded (1 in flight): get p50 ${base['p50 ms']} ms, p99 ${base['p99 ms']} ms`);
  out.push(`- gets that missed or failed on a key whose put had succeeded: ${missesOfStored} (expected 0)`);
  out.push(`- keys lost after crashing ${CRASH} of ${N}: ${lost} (target 0) — ${lost === 0 ? 'PASS' : 'FAIL'}`);
  out.push(`- total run time ${sec(performance.now() - t0)} s`);
  console.log(out.join('\n'));
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
