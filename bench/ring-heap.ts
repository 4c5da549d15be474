// Where bench:ring's memory per node goes. Builds a ring of N nodes on loopback UDP exactly
// as bench/ring.ts does, waits for consistency and a settle period, then prints the
// process's memory per node (RSS, V8 heap, external/array buffers) and, with --snapshot,
// writes a V8 heap snapshot and prints its top consumers per node (self size summed by
// constructor or closure name).
//
//   node --expose-gc dist/bench/ring-heap.js --nodes 256 [--settle-ms 10000] [--snapshot FILE]
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { Node } from '../src/node/node.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import { realClock } from '../src/util/clock.js';
import { cryptoRandom } from '../src/util/random.js';
import { consistent } from './ring-check.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const arg = (name: string, dflt?: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count per (node type, name), largest first. */
export function topConsumers(file: string, limit: number): Array<{ what: string; bytes: number; count: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length, fType = fields.indexOf('type'), fName = fields.indexOf('name'), fSize = fields.indexOf('self_size');
  const by = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + fType]!]!;
    const raw = s.strings[s.nodes[i + fName]!] ?? '';
    // Strings and numbers are grouped by type only (their names are their contents).
    const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' ? '' : raw.slice(0, 60);
    const key = `${type}:${name}`;
    const e = by.get(key) ?? { bytes: 0, count: 0 };
    e.bytes += s.nodes[i + fSize]!;
    e.count++;
    by.set(key, e);
  }
  return [...by].map(([what, e]) => ({ what, ...e })).sort((a, b) => b.bytes - a.bytes).slice(0, limit);
}

async function main(): Promise<void> {
  const N = Number(arg('--nodes', '256'));
  const settle = Number(arg('--settle-ms', '10000'));
  const snap = arg('--snapshot');
  gc(); await sleep(200); gc();
  const m0 = process.memoryUsage();
  const nodes: Node[] = [];
  for (let i = 0; i < N; i++) {
    const l = new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom });
    const node = new Node({ namespace: 'bench', listeners: [l], remoteTAs: i === 0 ? [] : nodes[0]!.info().tas, type: 'MultiNode' });
    await node.start();
    nodes.push(node);
  }
  const t0 = performance.now();
  while (!consistent(nodes) && performance.now() - t0 < 180_000) await sleep(100);
  await sleep(settle);
  gc(); await sleep(200); gc();
  const m1 = process.memoryUsage();
  const per = (k: keyof NodeJS.MemoryUsage) => Math.round((m1[k] - m0[k]) / N / 1024);
  const conns = nodes.reduce((s, n) => s + n.table.size, 0) / N;
  console.log(JSON.stringify({ N, consistent: consistent(nodes), 'conns/node': +conns.toFixed(1), 'RSS KB/node': per('rss'), 'heapUsed KB/node': per('heapUsed'),
    'heapTotal KB/node': per('heapTotal'), 'external KB/node': per('external'), 'arrayBuffers KB/node': per('arrayBuffers') }));
  // V8's spaces: what each holds (used) against what it has taken from the system (physical).
  for (const sp of getHeapSpaceStatistics()) {
    if (sp.space_size > 0) console.log(`${sp.space_name}: size ${(sp.space_size / 1048576).toFixed(1)} MB, used ${(sp.space_used_size / 1048576).toFixed(1)} MB, physical ${(sp.physical_space_size / 1048576).toFixed(1)} MB`);
  }
  if (snap) {
    const file = writeHeapSnapshot(snap);
    await Promise.all(nodes.map((n) => n.stop()));
    console.log('| self KB/node | count/node | what |\n| --- | --- | --- |');
    for (const c of topConsumers(file, Number(arg('--top', '40')))) console.log(`| ${(c.bytes / N / 1024).toFixed(1)} | ${(c.count / N).toFixed(1)} | ${c.what} |`);
  } else {
    await Promise.all(nodes.map((n) => n.stop()));
  }
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
