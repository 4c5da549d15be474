// Socket receive buffers for the simulator's measured processor (VirtualClock with a meter):
// when one process runs every node on one event loop, a datagram waits in its socket's receive
// buffer from its arrival until the loop reads it, and the kernel drops one that arrives at a
// full buffer (UDP RcvbufErrors). A buffer of rmem bytes holds rmem / truesize datagrams;
// `capacity(bytes)` says how many of this size, measured on loopback (bench/sim/processor.ts).
// Packets to one listener are read in arrival order, at nondecreasing times, so the datagrams
// in its buffer when a new one arrives at `due` are those that arrived before it and were read
// at or after `due`: a queue of read times, popped from the front.
export class RcvBuffers<K extends object> {
  private readonly queues = new WeakMap<K, { reads: number[]; weights: number[]; head: number; fill: number }>();
  /** Datagrams dropped at a full buffer. */
  dropped = 0;

  constructor(private readonly capacity: (bytes: number) => number) {}

  /**
   * A datagram of `bytes` that arrived at `to` at virtual time `due` is being read at `now`
   * (>= due): false when the buffer was full at its arrival (it was dropped and is not read).
   */
  admit(to: K, bytes: number, due: number, now: number): boolean {
    let q = this.queues.get(to);
    if (!q) this.queues.set(to, q = { reads: [], weights: [], head: 0, fill: 0 });
    while (q.head < q.reads.length && q.reads[q.head]! < due) q.fill -= q.weights[q.head++]!;
    if (q.head > 1024 && q.head * 2 > q.reads.length) { q.reads.splice(0, q.head); q.weights.splice(0, q.head); q.head = 0; }
    if (q.head === q.reads.length) q.fill = 0; // no rounding drift when empty
    const w = 1 / Math.max(1, this.capacity(bytes));
    if (q.fill + w > 1 + 1e-9) { this.dropped++; return false; }
    q.reads.push(now); q.weights.push(w); q.fill += w;
    return true;
  }
}
