// The GC pacer: dead packet buffers (outside V8's heap) are freed every PACE_BYTES of them
// instead of after ~32 MB have piled up, and those promoted to the old generation once
// FULL_AFTER_BYTES of them have (bench:vpn-soak's bounded-memory verdict).
import t from 'tap';
import { FULL_AFTER_BYTES, gcPaceStats, PACE_BYTES, paceGc, transientBytes } from '../src/util/gc-pacer.js';

const settle = () => new Promise((r) => setTimeout(r, 30));  // concurrent ArrayBuffer sweeping frees shortly after
const MB = 2 ** 20;

/**
 * process.memoryUsage().arrayBuffers once it is below `limit`, or after `ms` if it never is:
 * V8 frees dead array buffers on a concurrent sweeper thread, which a loaded machine (CI runs
 * beside other work) may not schedule within a fixed 30 ms.
 */
async function arrayBuffersBelow(limit: number, ms = 3000): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    const v = process.memoryUsage().arrayBuffers;
    if (v < limit || Date.now() >= end) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** 4 MB of 64 KB buffers that die at once, as a VPN's super-packets do. */
function garbage(): void {
  for (let i = 0; i < 64; i++) Buffer.allocUnsafe(65536)[0] = 1;
}

t.test('a process without a TAP is not paced: reports run no collection', async (t) => {
  const c0 = gcPaceStats.collections, b0 = gcPaceStats.bytes;
  for (let i = 0; i < 4; i++) transientBytes(PACE_BYTES);
  t.equal(gcPaceStats.collections, c0, 'no collection before paceGc()');
  t.equal(gcPaceStats.bytes, b0, 'nothing counted');
  paceGc();
});

t.test('below PACE_BYTES nothing is collected; at PACE_BYTES the dead packet buffers are freed', async (t) => {
  transientBytes(PACE_BYTES);  // start from a fresh count
  await settle();
  const c0 = gcPaceStats.collections;
  garbage();
  await settle();
  const before = process.memoryUsage().arrayBuffers;
  transientBytes(PACE_BYTES - 1);
  await settle();
  t.equal(gcPaceStats.collections, c0, 'no collection below the pace');
  t.ok(process.memoryUsage().arrayBuffers > before - MB, 'the dead buffers are still there');
  transientBytes(1);
  await settle();
  t.equal(gcPaceStats.collections, c0 + 1, 'one young-generation collection at the pace');
  const after = await arrayBuffersBelow(before - 3 * MB);
  t.ok(after < before - 3 * MB, `dead packet buffers freed: ${(before / MB).toFixed(1)} → ${(after / MB).toFixed(1)} MB`);
});

t.test('live buffers survive a paced collection', async (t) => {
  const kept = Buffer.allocUnsafe(65536).fill(7);
  transientBytes(PACE_BYTES);
  await settle();
  t.equal(kept.reduce((a, b) => a + b, 0), 7 * 65536, 'contents intact');
});

t.test('buffers that died old are freed by a full collection once external memory grew by FULL_AFTER_BYTES', async (t) => {
  const size = FULL_AFTER_BYTES + 8 * MB;
  /** Buffers held across two young collections (as messages behind a repair are), so promoted. */
  const promoted = async () => {
    const held = Array.from({ length: size / 65536 }, () => Buffer.allocUnsafe(65536).fill(1));
    transientBytes(PACE_BYTES);
    transientBytes(PACE_BYTES);
    await settle();
    return held;
  };
  let first: Buffer[] | undefined = await promoted();
  t.equal(first.length * 65536, size, 'the first lot lived through two young collections');
  first = undefined;  // now dead in the old generation: young collections cannot free it
  transientBytes(PACE_BYTES);
  await settle();
  const full0 = gcPaceStats.full;
  const deadOld = process.memoryUsage().arrayBuffers;
  const second = await promoted();  // external memory grows by `size` more: a full collection
  t.ok(gcPaceStats.full > full0, 'a full collection');
  const after = await arrayBuffersBelow(deadOld + size - FULL_AFTER_BYTES);
  t.ok(after < deadOld + size - FULL_AFTER_BYTES, `the dead lot freed: ${(deadOld / MB).toFixed(1)} MB before the second lot, ${(after / MB).toFixed(1)} MB with it`);
  t.equal(second.reduce((a, b) => a + b[0]!, 0), second.length, 'the live lot intact');
});
