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

/**
 * A TimeHeap with FIFO lanes: items pushed with a delay that has a lane go to the end of that
 * lane instead of into the heap. Items set for the same delay from a clock that never goes
 * back come due in the order they were set (due = now + delay, seq increasing), so each lane is
 * already sorted and costs O(1) per item; pop() takes the earliest of the heap's top and the
 * lanes' heads, so the order is exactly the heap's alone. (The simulator's packet deliveries,
 * most of its events, all take the one LAN latency.) An item that would break a lane's order
 * goes to the heap.
 */
export class TimeQueue<T extends Timed> {
  private readonly heap = new TimeHeap<T>();
  private readonly lanes: Lane<T>[] = [];
  private readonly laneOf = new Map<number, Lane<T>>();

  /** Keeps the items pushed with exactly `delay` in a FIFO lane of their own. */
  lane(delay: number): void {
    if (this.laneOf.has(delay)) return;
    const l: Lane<T> = { q: [], head: 0 };
    this.lanes.push(l);
    this.laneOf.set(delay, l);
  }

  get size(): number {
    let n = this.heap.size;
    for (const l of this.lanes) n += l.q.length - l.head;
    return n;
  }

  /** `delay`: what the item was set for (undefined: the heap). */
  push(x: T, delay?: number): void {
    const l = delay === undefined || this.lanes.length === 0 ? undefined : this.laneOf.get(delay);
    if (l !== undefined) {
      const tail = l.q.length > l.head ? l.q[l.q.length - 1]! : undefined;
      if (tail === undefined || tail.at < x.at || (tail.at === x.at && tail.seq < x.seq)) { l.q.push(x); return; }
    }
    this.heap.push(x);
  }

  peek(): T | undefined {
    let best = this.heap.peek();
    for (const l of this.lanes) {
      if (l.head === l.q.length) continue;
      const x = l.q[l.head]!;
      if (best === undefined || x.at < best.at || (x.at === best.at && x.seq < best.seq)) best = x;
    }
    return best;
  }

  pop(): T | undefined {
    let best = this.heap.peek(), from: Lane<T> | undefined;
    for (const l of this.lanes) {
      if (l.head === l.q.length) continue;
      const x = l.q[l.head]!;
      if (best === undefined || x.at < best.at || (x.at === best.at && x.seq < best.seq)) { best = x; from = l; }
    }
    if (from === undefined) return this.heap.pop();
    from.q[from.head++] = undefined as unknown as T; // taken: let it go
    if (from.head === from.q.length) { from.q.length = 0; from.head = 0; } else if (from.head >= 4096 && from.head * 2 >= from.q.length) { from.q.splice(0, from.head); from.head = 0; }
    return best;
  }

  /** Keeps only the items for which keep() holds; returns how many went. */
  retain(keep: (x: T) => boolean): number {
    let gone = this.heap.retain(keep);
    for (const l of this.lanes) {
      const live = l.q.slice(l.head).filter(keep); // still in order
      gone += l.q.length - l.head - live.length;
      l.q = live;
      l.head = 0;
    }
    return gone;
  }
}

interface Lane<T> { q: T[]; head: number }
