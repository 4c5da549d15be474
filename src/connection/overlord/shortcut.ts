// Symphony shortcuts: about ceil(0.5·log2 N) per node once N > 10, each toward a ring
// point at a distance drawn log-uniformly between the mean node spacing (2^160/N) and
// 2^160, so greedy routing needs O(log² N / k) hops.
import { Address, RING_BITS } from '../../address/address.js';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/log.js';
import type { RandomSource } from '../../util/random.js';
import type { LinkManager } from '../link-manager.js';
import type { ConnectionTable } from '../table.js';
import type { Connector, Overlord } from './overlord.js';

export interface ShortcutOptions { factor: number; settleMs: number; retryMinMs: number; retryMaxMs: number }
export const DEFAULT_SHORTCUT_OPTIONS: ShortcutOptions = { factor: 0.5, settleMs: 30_000, retryMinMs: 1000, retryMaxMs: 60_000 };

export function desiredShortcuts(n: number, factor = 0.5): number {
  return n > 10 ? Math.ceil(factor * Math.log2(n)) : 0;
}

/** A log-uniform distance in [2^160/N, 2^160), as an exact BigInt. */
export function shortcutDistance(n: number, p: number): bigint {
  const e = Number(RING_BITS) - (1 - p) * Math.log2(n);
  const whole = Math.floor(e);
  const frac = e - whole;
  // 2^e = 2^frac · 2^whole, with 2^frac carried as a 52-bit fixed-point mantissa.
  const mant = BigInt(Math.floor(2 ** frac * 2 ** 52));
  const d = whole >= 52 ? mant << BigInt(whole - 52) : mant >> BigInt(52 - whole);
  // Floating-point rounding may step a hair outside [2^160/N, 2^160): clamp.
  const lo = (1n << RING_BITS) / BigInt(Math.max(1, Math.ceil(n)));
  const hi = (1n << RING_BITS) - 2n;
  return d < lo ? lo : d > hi ? hi : d;
}

export class ShortcutOverlord implements Overlord {
  /** Peers we hold as our shortcuts (links we made, or already had, for a shortcut CTM). */
  private mine = new Set<string>();
  private pending = false;
  private backoff: number;
  private next = 0;

  constructor(
    private readonly table: ConnectionTable,
    private readonly link: LinkManager,
    private readonly connector: Connector,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly log: Logger,
    /** The network size estimate (estimateSize), which the node caches until its table changes. */
    private readonly size: () => number,
    private readonly opts: ShortcutOptions = DEFAULT_SHORTCUT_OPTIONS,
  ) {
    this.backoff = opts.retryMinMs;
    table.onChange((ev, c) => { if (ev === 'remove') this.mine.delete(c.address.key); });
  }

  get count(): number { return this.mine.size; }

  activate(now: number): void {
    const n = this.size();
    const want = desiredShortcuts(n, this.opts.factor);
    if (this.mine.size < want && !this.pending && now >= this.next && this.table.structured.length >= 2) this.seek(n);
    else if (this.mine.size > Math.max(2 * want, want + 1) && now - this.table.lastChange >= this.opts.settleMs) this.trimOne();
  }

  private seek(n: number): void {
    const self = this.table.self;
    const d = shortcutDistance(n, this.random.float());
    const target = Address.ringPoint(this.random.float() < 0.5 ? self.value + d : self.value - d);
    this.pending = true;
    this.connector.connectTo(target, 'greedy', 'structured.shortcut').then((infos) => {
      this.pending = false;
      const got = infos.map((i) => this.table.get(i.address)).find((c) => c && c.structured);
      if (got) { this.mine.add(got.address.key); this.backoff = this.opts.retryMinMs; this.next = 0; return; }
      this.fail();
    }, (e) => {
      this.pending = false;
      this.log.debug(`shortcut toward ${target.key} failed: ${(e as Error).message}`);
      this.fail();
    });
  }

  private fail(): void {
    this.next = this.clock.now() + this.backoff;
    this.backoff = Math.min(this.opts.retryMaxMs, this.backoff * 2);
  }

  private trimOne(): void {
    const keys = [...this.mine];
    const key = keys[this.random.int(keys.length)]!;
    const c = [...this.table.all()].find((x) => x.address.key === key);
    if (c?.relayHeld(this.clock.now())) return;
    this.mine.delete(key);
    if (c && c.type === 'structured.shortcut' && c.initiator) this.link.close(c, 'trimmed: surplus shortcut');
  }
}
