// One shared instance per value for immutable objects decoded over and over (a peer's
// Address and TransportAddresses arrive in every neighbour list and link message). Without
// it each node in a process keeps its own copies of the same few thousand values; with it
// they share one, held weakly so that a value nobody uses any more can go.

export class Interner<T extends object> {
  private readonly map = new Map<string, WeakRef<T>>();
  private readonly registry = new FinalizationRegistry<string>((key) => {
    if (this.map.get(key)?.deref() === undefined) this.map.delete(key);
  });

  /** The live instance for `key`, or the one `make` builds (which must depend on `key` alone). */
  get(key: string, make: () => T): T {
    const have = this.map.get(key)?.deref();
    if (have) return have;
    const made = make();
    this.map.set(key, new WeakRef(made));
    this.registry.register(made, key);
    return made;
  }

  /** Live entries (tests). */
  get size(): number { return this.map.size; }
}

