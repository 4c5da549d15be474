// Rate limit for the frames switch mode floods to every member (broadcast, multicast and
// unknown unicast): a token bucket per source MAC, so one chatty or looping host cannot
// saturate the overlay while the others keep flooding. Memory is bounded: at most maxSources
// buckets, the least recently used one is evicted for a new source (an evicted source that
// comes back starts again with a full bucket, as does any source first seen).
import type { Clock } from '../../util/clock.js';
import { macKey } from './mac-key.js';

export interface FloodOptions { perSecond: number; burst: number; maxSources: number }
export const DEFAULT_FLOOD: FloodOptions = { perSecond: 200, burst: 400, maxSources: 1024 };

interface Bucket { tokens: number; at: number }

export class FloodLimiter {
  readonly stats = { flooded: 0, limited: 0 };
  private readonly opts: FloodOptions;
  /** In least recently used order: allow() moves a bucket to the end. */
  private readonly buckets = new Map<number, Bucket>();

  constructor(private readonly clock: Pick<Clock, 'now'>, opts: Partial<FloodOptions> = {}) {
    this.opts = { ...DEFAULT_FLOOD, ...opts };
    const { perSecond, burst, maxSources } = this.opts;
    if (!(perSecond > 0) || !(burst >= 1) || !Number.isInteger(maxSources) || maxSources < 1) {
      throw new RangeError(`bad flood limits: perSecond ${perSecond} (> 0), burst ${burst} (≥ 1), maxSources ${maxSources} (integer ≥ 1)`);
    }
  }

  /** True if the frame whose source MAC is at frame[srcMacOff..+6) may be flooded now (takes a token). */
  allow(frame: Uint8Array, srcMacOff: number): boolean {
    const key = srcMacOff >= 0 && srcMacOff + 6 <= frame.length ? macKey(frame, srcMacOff) : -1;
    const now = this.clock.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.opts.maxSources) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.opts.burst, at: now };
    } else {
      this.buckets.delete(key);
      if (now > b.at) b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) * this.opts.perSecond) / 1000);
      b.at = now;
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.stats.flooded++;
      return true;
    }
    this.stats.limited++;
    return false;
  }

  /** Sources tracked; never more than maxSources. */
  get size(): number { return this.buckets.size; }
}
