// A binary min-heap of events ordered by time, ties by sequence number (the order they were
// queued). The virtual clock's timer queue and the loop processor's ready sockets
// (bench/sim/loop-clock.ts) are both one of these. The ordering is fixed (at, then seq) rather
// than a comparator passed in: the simulator pushes and pops millions of events, and a direct
// comparison keeps that path monomorphic.

/** What the heap orders: `at` first, then `seq` (smaller first). */
export interface Timed { at: number; seq: number }

export class TimeHeap<T extends Timed> {
  private readonly h: T[] = [];

  /** Items in the heap. */
  get size(): number { return this.h.length; }

  /** The earliest item, left in place (undefined: empty). */
  peek(): T | undefined { return this.h[0]; }

  push(x: T): void {
    const h = this.h;
    let i = h.length;
    h.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const y = h[p]!;
      if (!(x.at < y.at || (x.at === y.at && x.seq < y.seq))) break;
      h[i] = y;
      i = p;
    }
    h[i] = x;
  }

  /** Takes the earliest item off (undefined: empty). */
  pop(): T | undefined {
    const h = this.h;
    const top = h[0];
    const last = h.pop();
    if (last === undefined || h.length === 0) return top;
    const n = h.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l, cx = h[l]!;
      if (r < n) {
        const rx = h[r]!;
        if (rx.at < cx.at || (rx.at === cx.at && rx.seq < cx.seq)) { c = r; cx = rx; }
      }
      if (!(cx.at < last.at || (cx.at === last.at && cx.seq < last.seq))) break;
      h[i] = cx;
      i = c;
    }
    h[i] = last;
    return top;
  }

  /** Keeps only the items for which keep() holds (O(n log n)); returns how many went. */
  retain(keep: (x: T) => boolean): number {
    const live = this.h.filter(keep);
    const gone = this.h.length - live.length;
    live.sort(order);
    this.h.length = 0;
    for (const x of live) this.h.push(x); // a sorted array is a valid heap
    return gone;
  }
}

function order(a: Timed, b: Timed): number { return a.at - b.at || a.seq - b.seq; }
