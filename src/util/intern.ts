// One shared instance per value for immutable objects decoded over and over (a peer's
// Address and TransportAddresses arrive in every neighbour list and link message). Without
// it each node in a process keeps its own copies of the same few thousand values; with it
// they share one, held weakly so that a value nobody uses any more can go.

export class Interner<T extends object> {
  private readonly map = new Map<string, WeakRef<T>>();
  private readonly registry = new FinalizationRegistry<string>((key) => {
    if (this.map.get(key)?.deref() === undefined) this.map.delete(key);
  });

  /** The live instance for `key`, or the one `make(key)` builds (which must depend on `key` alone). */
  get(key: string, make: (key: string) => T): T {
    const have = this.map.get(key)?.deref();
    if (have) return have;
    const made = make(key);
    this.map.set(key, new WeakRef(made));
    this.registry.register(made, key);
    return made;
  }

  /** Live entries (tests). */
  get size(): number { return this.map.size; }
}

/**
 * As Interner, keyed by a short byte string (a 20-byte address) without building a text key:
 * a 32-bit hash of the bytes picks a bucket, and the bytes are compared with the candidates'
 * own (`keyOf`). Looking up a decoded address this way costs no allocation.
 */
export class BytesInterner<T extends object> {
  /** hash → the entries with that hash (almost always one). */
  private readonly map = new Map<number, WeakRef<T> | WeakRef<T>[]>();
  private readonly registry = new FinalizationRegistry<number>((h) => this.prune(h));
  private count = 0;

  /** `hash`: hashBytes unless a test needs collisions. */
  constructor(private readonly keyOf: (x: T) => Uint8Array, private readonly hash: (b: Uint8Array) => number = hashBytes) {}

  /** The live instance whose key equals `b`, or the one `make` builds from `b` (which must copy it). */
  get(b: Uint8Array, make: (b: Uint8Array) => T): T {
    const h = this.hash(b);
    const slot = this.map.get(h);
    if (slot !== undefined) {
      if (Array.isArray(slot)) {
        for (const ref of slot) { const x = ref.deref(); if (x && sameBytes(this.keyOf(x), b)) return x; }
      } else {
        const x = slot.deref();
        if (x && sameBytes(this.keyOf(x), b)) return x;
      }
    }
    const made = make(b);
    const ref = new WeakRef(made);
    if (slot === undefined) this.map.set(h, ref);
    else if (Array.isArray(slot)) slot.push(ref);
    else this.map.set(h, [slot, ref]);
    this.count++;
    this.registry.register(made, h);
    return made;
  }

  /** Drops the dead entries under hash h (one of them was just collected). */
  private prune(h: number): void {
    const slot = this.map.get(h);
    if (slot === undefined) return;
    const live = (Array.isArray(slot) ? slot : [slot]).filter((r) => r.deref() !== undefined);
    this.count -= (Array.isArray(slot) ? slot.length : 1) - live.length;
    if (live.length === 0) this.map.delete(h);
    else this.map.set(h, live.length === 1 ? live[0]! : live);
  }

  /** Entries not yet pruned (tests). */
  get size(): number { return this.count; }
}

/** FNV-1a over the bytes, 32 bits. */
export function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
