// The aging both of switch mode's tables share (MacTable, ArpCache): entries keyed by MAC or IP,
// each with the port it was learnt on and when it was last seen; an entry seen ageMs or more
// ago is never returned, and a full map is swept only once an entry may have aged (so a flood of
// new sources against a full table costs no sweep per frame).
import type { Address } from '../../address/address.js';
import type { Clock } from '../../util/clock.js';

/** 'local' = learnt on the TAP/bridge side; an Address = behind that member. */
export type MacPort = 'local' | Address;

export function samePort(a: MacPort, b: MacPort): boolean {
  if (a === b) return true;
  return a !== 'local' && b !== 'local' && a.equals(b);
}

export function portName(p: MacPort): string { return p === 'local' ? 'local' : p.key; }

export interface AgingEntry { port: MacPort; seen: number }

export class AgingMap<K, E extends AgingEntry> {
  /** Entries dropped because they aged (on lookup or in a sweep). */
  aged = 0;
  private readonly map = new Map<K, E>();
  /** No entry can have aged before this time. */
  private nextAging = Infinity;

  constructor(private readonly clock: Pick<Clock, 'now'>, readonly ageMs: number, readonly maxEntries: number) {}

  /** The entry as held, aged or not. */
  get(key: K): E | undefined { return this.map.get(key); }

  /** The entry if it is fresh; an aged one is dropped (and counted). */
  fresh(key: K, now = this.clock.now()): E | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (now - e.seen < this.ageMs) return e;
    this.map.delete(key);
    this.aged++;
    return undefined;
  }

  /** Adds a new entry unless the map is full of live ones (then false). */
  add(key: K, e: E, now: number): boolean {
    if (this.map.size >= this.maxEntries && now >= this.nextAging) this.expire();
    if (this.map.size >= this.maxEntries) return false;
    this.map.set(key, e);
    this.nextAging = Math.min(this.nextAging, now + this.ageMs);
    return true;
  }

  /** Drops aged entries; returns how many. */
  expire(): number {
    const now = this.clock.now();
    let n = 0;
    let oldest = Infinity;
    for (const [key, e] of this.map) {
      if (now - e.seen >= this.ageMs) { this.map.delete(key); n++; } else oldest = Math.min(oldest, e.seen);
    }
    this.nextAging = oldest + this.ageMs;
    this.aged += n;
    return n;
  }

  /** A member left: the entries learnt behind it go. */
  forget(member: Address): void {
    for (const [key, e] of this.map) if (e.port !== 'local' && e.port.equals(member)) this.map.delete(key);
  }

  /** The live entries with their keys and ages, in learning order. */
  live(): Array<{ key: K; entry: E; ageMs: number }> {
    const now = this.clock.now();
    const out: Array<{ key: K; entry: E; ageMs: number }> = [];
    for (const [key, entry] of this.map) if (now - entry.seen < this.ageMs) out.push({ key, entry, ageMs: now - entry.seen });
    return out;
  }

  /** Entries held, aged ones not yet swept included; never more than maxEntries. */
  get size(): number { return this.map.size; }
}
