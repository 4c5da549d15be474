// The web view's history: process-wide counters sampled at a fixed period into a bounded
// ring buffer (an hour at the defaults), kept as rates per second between samples.
import type { Clock, TimerHandle } from '../../util/clock.js';

/** Cumulative counters, read at each sample (connections is a level, not a counter). */
export interface Counters { connections: number; messages: number; puts: number; gets: number }
/** One sample: the time (ms, the clock's), the connection count, and rates per second since the previous sample. */
export interface Sample { t: number; connections: number; messagesPerSec: number; putsPerSec: number; getsPerSec: number }

export class History {
  private readonly buf: (Sample | undefined)[];
  private head = 0;
  private size = 0;
  private last?: { t: number; c: Counters };
  private timer?: TimerHandle;
  /** Samples taken so far: changes whenever samples() does. */
  version = 0;

  constructor(private readonly read: () => Counters, private readonly clock: Clock, readonly periodMs = 5000, readonly capacity = 720) {
    this.buf = new Array(capacity);
  }

  start(): void {
    if (this.timer) return;
    this.last = { t: this.clock.now(), c: this.read() };
    this.timer = this.clock.setInterval(() => this.sample(), this.periodMs);
  }

  stop(): void { this.timer?.cancel(); this.timer = undefined; }

  /** Takes one sample now (the timer calls it; tests may too). */
  sample(): void {
    const t = this.clock.now(), c = this.read(), prev = this.last;
    this.last = { t, c };
    if (!prev || t <= prev.t) return;
    const dt = (t - prev.t) / 1000;
    const rate = (k: keyof Counters) => Math.max(0, Math.round(((c[k] - prev.c[k]) / dt) * 100) / 100);
    this.buf[this.head] = { t, connections: c.connections, messagesPerSec: rate('messages'), putsPerSec: rate('puts'), getsPerSec: rate('gets') };
    this.head = (this.head + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
    this.version++;
  }

  /** Oldest first. */
  samples(): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.buf[(this.head - this.size + i + this.capacity) % this.capacity]!);
    return out;
  }
}
