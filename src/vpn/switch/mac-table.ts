// Switch mode's learning table: which side of the switch a MAC lives on, the local TAP/bridge
// or a member of the overlay. Entries age out exactly: an entry whose last sighting is ageMs
// or more ago is never returned. A MAC seen behind a different port is a move; moves of the
// same MAC closer together than moveHoldMs are held (the entry stays) so that a MAC looping
// between two ports, or two hosts sharing a MAC, cannot make the table flap on every frame.
import type { Address } from '../../address/address.js';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/log.js';
import { AgingMap, portName, samePort, type MacPort } from './aging-map.js';
import { isGroupKey, macKey, macKeyToString } from './mac-key.js';

export { portName, samePort, type MacPort } from './aging-map.js';

export interface MacTableOptions { ageMs: number; maxEntries: number; moveHoldMs: number }
export const DEFAULT_MAC_TABLE: MacTableOptions = { ageMs: 300_000, maxEntries: 4096, moveHoldMs: 1000 };

/**
 * What learn() did. 'ignored': a group (multicast/broadcast) or all-zero source MAC, or fewer
 * than 6 bytes at the offset; such a source is never learnt and the table is unchanged.
 */
export type Learnt = 'new' | 'refreshed' | 'moved' | 'held' | 'full' | 'ignored';

/** At most this many move warnings per second in all, whatever the number of MACs moving. */
const WARNINGS_PER_SECOND = 10;

interface Entry { port: MacPort; seen: number; changed: number; warned: number }

export class MacTable {
  readonly stats: { learned: number; refreshed: number; moves: number; movesHeld: number; readonly aged: number; full: number; conflicts: number; ignored: number };
  private readonly opts: MacTableOptions;
  private readonly table: AgingMap<number, Entry>;
  private warnWindow = -Infinity;
  private warnsInWindow = 0;
  private warnsSuppressed = 0;

  constructor(private readonly clock: Pick<Clock, 'now'>, private readonly log: Logger, opts: Partial<MacTableOptions> = {}) {
    this.opts = { ...DEFAULT_MAC_TABLE, ...opts };
    const { ageMs, maxEntries, moveHoldMs } = this.opts;
    if (!(ageMs > 0) || !(moveHoldMs >= 0) || !Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`bad MAC table options: ageMs ${ageMs} (> 0), maxEntries ${maxEntries} (integer ≥ 1), moveHoldMs ${moveHoldMs} (≥ 0)`);
    }
    const table = this.table = new AgingMap(clock, ageMs, maxEntries);
    this.stats = { learned: 0, refreshed: 0, moves: 0, movesHeld: 0, get aged() { return table.aged; }, full: 0, conflicts: 0, ignored: 0 };
  }

  /** frame[off..off+6) is a source MAC seen on `port`. */
  learn(frame: Uint8Array, off: number, port: MacPort): Learnt {
    if (off < 0 || off + 6 > frame.length) return this.ignore();
    const key = macKey(frame, off);
    if (key === 0 || isGroupKey(key)) return this.ignore();
    const now = this.clock.now();
    const e = this.table.fresh(key, now);
    if (e === undefined) {
      if (!this.table.add(key, { port, seen: now, changed: now, warned: -Infinity }, now)) {
        this.stats.full++;
        return 'full';
      }
      this.stats.learned++;
      return 'new';
    }
    if (samePort(e.port, port)) {
      e.seen = now;
      this.stats.refreshed++;
      return 'refreshed';
    }
    this.stats.conflicts++;
    const moving = now - e.changed >= this.opts.moveHoldMs;
    if (now - e.warned >= this.opts.moveHoldMs) {
      e.warned = now;
      this.warn(`MAC ${macKeyToString(key)} seen on ${portName(port)}, was on ${portName(e.port)}: ${moving ? 'moved' : `held (last change ${now - e.changed} ms ago)`}`, now);
    }
    if (!moving) {
      this.stats.movesHeld++;
      return 'held';
    }
    e.port = port;
    e.seen = now;
    e.changed = now;
    this.stats.moves++;
    return 'moved';
  }

  /** Where frames to this MAC go; undefined when unknown or aged out. */
  lookup(frame: Uint8Array, off: number): MacPort | undefined {
    if (off < 0 || off + 6 > frame.length) return undefined;
    return this.table.fresh(macKey(frame, off))?.port;
  }

  /** Drops aged entries (the node calls it every second); returns how many. */
  expire(): number { return this.table.expire(); }

  /** A member left: its entries go. */
  forget(member: Address): void { this.table.forget(member); }

  /** For get_state/status: the live entries, in learning order. */
  entries(): Array<{ mac: string; port: string; ageMs: number }> {
    return this.table.live().map((x) => ({ mac: macKeyToString(x.key), port: portName(x.entry.port), ageMs: x.ageMs }));
  }

  /** Entries held, aged ones not yet expired included; never more than maxEntries. */
  get size(): number { return this.table.size; }

  private ignore(): Learnt {
    this.stats.ignored++;
    return 'ignored';
  }

  /** Move warnings: one per MAC per moveHoldMs (caller), at most WARNINGS_PER_SECOND in all. */
  private warn(msg: string, now: number): void {
    if (now - this.warnWindow >= 1000) {
      if (this.warnsSuppressed > 0) this.log.warn(`switch: ${this.warnsSuppressed} more MAC move warnings suppressed`);
      this.warnWindow = now;
      this.warnsInWindow = 0;
      this.warnsSuppressed = 0;
    }
    if (this.warnsInWindow >= WARNINGS_PER_SECOND) { this.warnsSuppressed++; return; }
    this.warnsInWindow++;
    this.log.warn(`switch: ${msg}`);
  }
}
