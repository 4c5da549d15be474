// A tiny typed event emitter: explicit listener lists instead of mutable callback slots, so
// several parts of a node can listen to one event and nobody silently replaces another's
// handler. `EventMap` maps each event name to its argument tuple.
export type EventMap = Record<string, unknown[]>;

type Lists<M extends EventMap> = { [K in keyof M]?: ((...args: M[K]) => void)[] };

export class Events<M extends EventMap> {
  private readonly lists: Lists<M> = {};

  // Lists are copied on change, never mutated: emit (on every routed packet) need not copy,
  // and a listener added or removed during an emit takes effect from the next one.
  /** Adds a listener; returns the function that removes it again. */
  on<K extends keyof M>(name: K, fn: (...args: M[K]) => void): () => void {
    this.lists[name] = [...(this.lists[name] ?? []), fn];
    let on = true;
    return () => {
      if (!on) return;
      on = false;
      const list = this.lists[name] ?? [];
      const i = list.indexOf(fn);
      if (i >= 0) this.lists[name] = [...list.slice(0, i), ...list.slice(i + 1)];
    };
  }

  /** Calls every listener of `name` in the order they were added. */
  emit<K extends keyof M>(name: K, ...args: M[K]): void {
    const list = this.lists[name];
    if (list) for (const fn of list) fn(...args);
  }

  /** How many listeners `name` has. */
  count(name: keyof M): number {
    return this.lists[name]?.length ?? 0;
  }
}
