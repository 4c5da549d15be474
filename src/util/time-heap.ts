// A min-heap of events ordered by time, ties by sequence number (the order they were queued).
// The virtual clock's timer queue and the loop processor's ready sockets
// (bench/sim/loop-clock.ts) are both one of these. The ordering is fixed (at, then seq) rather
// than a comparator passed in: the simulator pushes and pops millions of events, and a direct
// comparison keeps that path monomorphic.
//
// Four children per node, and the keys kept in typed arrays beside the items: a pop compares
// keys that sit side by side instead of reading each item's fields from wherever it lives. At
// 55,000 simulated nodes (about 20 timers each) the binary heap of items was a tenth of the
// run's time, most of it waiting on memory.

/** What the heap orders: `at` first, then `seq` (smaller first). Read once, when pushed. */
export interface Timed { at: number; seq: number }

export class TimeHeap<T extends Timed> {
  private items: (T | undefined)[] = new Array(64);
  private ats = new Float64Array(64);
  private seqs = new Float64Array(64);
  private n = 0;

  /** Items in the heap. */
  get size(): number { return this.n; }

  /** The earliest item, left in place (undefined: empty). */
  peek(): T | undefined { return this.n > 0 ? this.items[0] : undefined; }

  push(x: T): void {
    if (this.n === this.ats.length) this.grow();
    const ats = this.ats, seqs = this.seqs, items = this.items;
    const at = x.at, seq = x.seq;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pa = ats[p]!;
      if (!(at < pa || (at === pa && seq < seqs[p]!))) break;
      ats[i] = pa; seqs[i] = seqs[p]!; items[i] = items[p];
      i = p;
    }
    ats[i] = at; seqs[i] = seq; items[i] = x;
  }

  /** Takes the earliest item off (undefined: empty). */
  pop(): T | undefined {
    if (this.n === 0) return undefined;
    const items = this.items, top = items[0];
    const last = --this.n;
    const x = items[last]!;
    items[last] = undefined;
    if (last === 0) return top;
    const ats = this.ats, seqs = this.seqs;
    const at = ats[last]!, seq = seqs[last]!;
    let i = 0;
    for (;;) {
      const first = 4 * i + 1;
      if (first >= last) break;
      let c = first, ca = ats[first]!, cs = seqs[first]!;
      const end = first + 4 < last ? first + 4 : last;
      for (let j = first + 1; j < end; j++) {
        const ja = ats[j]!;
        if (ja < ca || (ja === ca && seqs[j]! < cs)) { c = j; ca = ja; cs = seqs[j]!; }
      }
      if (!(ca < at || (ca === at && cs < seq))) break;
      ats[i] = ca; seqs[i] = cs; items[i] = items[c];
      i = c;
    }
    ats[i] = at; seqs[i] = seq; items[i] = x;
    return top;
  }

  /** Keeps only the items for which keep() holds (O(n log n)); returns how many went. */
  retain(keep: (x: T) => boolean): number {
    const live: T[] = [];
    for (let i = 0; i < this.n; i++) { const x = this.items[i]!; if (keep(x)) live.push(x); }
    const gone = this.n - live.length;
    live.sort(order);
    this.items.fill(undefined, 0, this.n);
    this.n = 0;
    for (const x of live) this.push(x); // a sorted array is a valid heap: each push stays where it lands
    return gone;
  }

  private grow(): void {
    const size = this.ats.length * 2;
    const ats = new Float64Array(size), seqs = new Float64Array(size);
    ats.set(this.ats); seqs.set(this.seqs);
    this.ats = ats; this.seqs = seqs;
    this.items.length = size;
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
