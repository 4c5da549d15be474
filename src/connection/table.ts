// ConnectionTable: one connection per peer address, and an immutable sorted snapshot of
// the structured ones so routing and overlords can binary-search the ring cheaply.
import type { Address } from '../address/address.js';
import type { Edge } from '../transport/edge.js';
import type { Connection } from './connection.js';

export type TableListener = (event: 'add' | 'remove' | 'type', c: Connection) => void;

export class ConnectionTable {
  private byKey = new Map<string, Connection>();
  private byEdge = new Map<Edge, Connection>();
  private sorted: readonly Connection[] = [];
  private listeners: TableListener[] = [];
  /** Time of the last add/remove; trimming waits for the table to settle. */
  lastChange = 0;

  constructor(readonly self: Address, private now: () => number) {}

  onChange(l: TableListener): void { this.listeners.push(l); }
  get size(): number { return this.byKey.size; }
  get(a: Address): Connection | undefined { return this.byKey.get(a.key); }
  getByEdge(e: Edge): Connection | undefined { return this.byEdge.get(e); }
  /** Every connection, oldest first (in the order they were added, each created just before). */
  all(): IterableIterator<Connection> { return this.byKey.values(); }
  /** Structured connections in increasing address order (a snapshot: never mutated). */
  get structured(): readonly Connection[] { return this.sorted; }

  add(c: Connection): void {
    const old = this.byKey.get(c.address.key);
    if (old) this.remove(old);
    this.byKey.set(c.address.key, c);
    this.byEdge.set(c.edge, c);
    if (c.structured) this.insertSorted(c);
    this.emit('add', c);
  }
  remove(c: Connection): boolean {
    if (this.byKey.get(c.address.key) !== c) return false;
    this.byKey.delete(c.address.key);
    this.byEdge.delete(c.edge);
    if (c.structured) this.removeSorted(c);
    this.emit('remove', c);
    return true;
  }
  setType(c: Connection, type: string): void {
    if (c.type === type) return;
    const was = c.structured;
    c.type = type;
    if (was !== c.structured && this.byKey.get(c.address.key) === c) {
      if (was) this.removeSorted(c); else this.insertSorted(c);
    }
    this.emit('type', c);
  }

  private emit(ev: 'add' | 'remove' | 'type', c: Connection): void {
    this.lastChange = this.now();
    for (const l of this.listeners) l(ev, c);
  }
  // The snapshot is replaced, never mutated, and only when the structured set changes: a
  // bootstrap node holds a leaf per joining node, and re-sorting its whole table on each of
  // them made joins cost O(N) there.
  private insertSorted(c: Connection): void {
    const s = this.sorted.slice();
    s.splice(this.lowerBound(c.address.value), 0, c);
    this.sorted = s;
  }
  private removeSorted(c: Connection): void {
    const i = this.sorted.indexOf(c);
    if (i >= 0) { const s = this.sorted.slice(); s.splice(i, 1); this.sorted = s; }
  }

  /** Index of the first structured connection with address >= v (may equal length). */
  private lowerBound(v: bigint): number {
    const s = this.sorted;
    let lo = 0, hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]!.address.value < v) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /**
   * Up to n structured connections on each side of `a` (excluding a itself): `left` walks
   * clockwise (increasing addresses), `right` counter-clockwise, both nearest first.
   */
  neighborsOf(a: Address, n: number): { left: Connection[]; right: Connection[] } {
    const s = this.sorted;
    const left: Connection[] = [], right: Connection[] = [];
    const len = s.length;
    if (len === 0) return { left, right };
    const lb = this.lowerBound(a.value);
    const exact = lb < len && s[lb]!.address.value === a.value ? 1 : 0;
    const others = len - exact;
    const take = Math.min(n, others);
    for (let i = 0; i < take; i++) left.push(s[(lb + exact + i) % len]!);
    for (let i = 0; i < take; i++) right.push(s[(lb - 1 - i + len * 2) % len]!);
    return { left, right };
  }

  /** The structured connections immediately clockwise and counter-clockwise of `a`. */
  bracket(a: Address): { left?: Connection; right?: Connection } {
    const s = this.sorted;
    const len = s.length;
    if (len === 0) return { left: undefined, right: undefined };
    // Routing calls this per packet: index arithmetic only, no intermediate arrays.
    const lb = this.lowerBound(a.value);
    const exact = lb < len && s[lb]!.address.value === a.value ? 1 : 0;
    if (len - exact === 0) return { left: undefined, right: undefined };
    return { left: s[(lb + exact) % len], right: s[(lb - 1 + len) % len] };
  }

  /** Nearest structured connections around `a`, per side, nearest first, deduplicated. */
  nearestTo(a: Address, perSide: number): Connection[] {
    // neighborsOf's walk, without its two arrays and a Set: at most 2 * perSide entries.
    const s = this.sorted, len = s.length, out: Connection[] = [];
    if (len === 0) return out;
    const lb = this.lowerBound(a.value);
    const exact = lb < len && s[lb]!.address.value === a.value ? 1 : 0;
    const take = Math.min(perSide, len - exact);
    for (let i = 0; i < take; i++) {
      const l = s[(lb + exact + i) % len]!, r = s[(lb - 1 - i + len * 2) % len]!;
      if (!out.includes(l)) out.push(l);
      if (!out.includes(r)) out.push(r);
    }
    return out;
  }
}
