// Garbage collection paced by the packet buffers that die young. Packet bytes live outside
// V8's heap (ArrayBuffer backing stores in malloc'd memory) while the JS objects pointing to
// them are tiny, so the young generation hardly fills and V8 collects dead packet buffers only
// once about 32 MB of them have piled up, with a full mark-compact. A VPN daemon moving 64 KB
// super-packets then swings its RSS by some 30 MB (a quarter of it) several times a second
// and spends about a tenth of a core in mark-compacts (bench:vpn-soak, docs/benchmarks.md).
//
// So the data path reports the bytes of the buffers it allocates per packet (receive batches,
// reassembled messages, TAP reads, sealed copies) and every PACE_BYTES of them we ask V8 for a
// young-generation collection (a scavenge: about a millisecond, as the live young set is
// small), which frees the packet buffers that have died since. Buffers that outlive two of
// them (messages held behind a fragment repair) are promoted to the old generation, where
// only a full collection frees them: one is asked for once external memory has grown by
// FULL_AFTER_BYTES (or half its level, if more) since the lowest level seen after a collection. Together this bounds the
// dead packet bytes in memory to about PACE_BYTES + FULL_AFTER_BYTES. The collector is V8's
// own `gc`, reached through a fresh context after --expose-gc is set at run time (the global
// object is left alone); where that is not possible, or BRUNET_GC_PACE=0, nothing is paced
// and V8 decides alone.
//
// Pacing is for a VPN process: it starts when a TAP device starts reading (paceGc()). A
// process without one (run_bootstrap_node with 1,000 nodes, the simulator) moves small
// messages, holds a large heap and lets V8 decide: there the forced full collections cost
// 7 points of a core in bench:web (17.3 % against 10.1 % with BRUNET_GC_PACE=0).

import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Packet bytes allocated between two young-generation collections. */
export const PACE_BYTES = 4 << 20;
/**
 * Growth of external memory (ArrayBuffers included) after which a full collection is asked
 * for; in a process holding more than twice this (a simulator's thousands of nodes), half its floor.
 */
export const FULL_AFTER_BYTES = 16 << 20;

type Collect = (o?: { type: 'minor' }) => void;

let collect: Collect | null | undefined;
let pacing = false;
let since = 0;
/** External memory after a collection: the lowest since the last full one. */
let floor = Infinity;
/** Collections asked for so far, young and full (for tests and status), and the bytes reported. */
export const gcPaceStats = { collections: 0, full: 0, bytes: 0 };

function collector(): Collect | null {
  if (collect !== undefined) return collect;
  collect = null;
  if (process.env['BRUNET_GC_PACE'] === '0') return collect;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') collect = gc as Collect;
  } catch { /* not available: V8 paces alone */ }
  return collect;
}

/** Starts pacing in this process (a TAP device moving frames); without it transientBytes does nothing. */
export function paceGc(): void { pacing = true; }

/** Reports n bytes of a per-packet buffer that will die young; may run a scavenge. */
export function transientBytes(n: number): void {
  if (!pacing) return;
  since += n;
  if (since < PACE_BYTES) return;
  gcPaceStats.bytes += since;
  since = 0;
  const gc = collector();
  if (!gc) return;
  gcPaceStats.collections++;
  gc({ type: 'minor' });
  const external = getHeapStatistics().external_memory;
  if (external < floor) { floor = external; return; }
  if (external - floor < Math.max(FULL_AFTER_BYTES, floor / 2)) return;
  gcPaceStats.full++;
  gc();  // full and synchronous ({ type: 'major' } frees no ArrayBuffers on Node 20)
  floor = getHeapStatistics().external_memory;
}
