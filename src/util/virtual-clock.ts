// A Clock in virtual time: timers go into a binary-heap event queue and run() pops them in
// time order (ties in the order they were set). Node code is async/await throughout, so
// each event's promise continuations must run to completion before the next event: a
// continuation runs at the instant that caused it, never later, and two packets that arrive
// at one instant are handled one after the other, as a real event loop handles two
// datagrams. run() takes all the events due at one instant off the queue and hands them to
// the real event loop as that many setImmediate callbacks, then one more that ends the
// instant: Node drains the microtask queue after every immediate callback, so each event
// still sees everything its predecessors' async handlers did, with one loop turn per
// instant instead of one per event. (Back to back in ONE callback was cheaper still, but let
// a packet overtake the handling of the one before it.) Events that those callbacks add for
// the same instant run in the next batch, after the current one, as their later sequence
// numbers demand. Nothing here reads real time.
//
// With a `meter` (the simulator's measured processor, bench/sim/processor.ts) the clock is
// instead ONE serial processor, as a process that runs every node on one event loop: events run
// one at a time in the order they came due, each costs the real time that its callback and the
// promise continuations it caused took (meter() after minus before), and an event that comes
// due while an earlier one is still being worked off starts when that one ends, so the virtual
// time it sees (for timestamps and the timers it sets) is that later time. This mode reads real
// time only through the meter, and its traces are not reproducible. A subclass may run the
// metered events in another order (bench/sim/loop-clock.ts: passes like libuv's) through the
// protected hooks dueAt, rearmAt, runMetered and timed.
import type { Clock, TimerHandle } from './clock.js';
import { TimeQueue } from './time-heap.js';

/** A timer is its own handle: one object per timer (packet deliveries are most of them). */
export class VirtualTimer implements TimerHandle {
  cancelled = false;
  /** Taken off the heap into the current instant's batch (cancelling it then leaves no garbage in the heap). */
  queued = false;
  constructor(
    private readonly clock: VirtualClock,
    public at: number,
    public seq: number,
    readonly fn: () => void,
    /** > 0 for setInterval. */
    readonly period: number,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    if (!this.queued) this.clock.discarded();
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

export class VirtualClock implements Clock {
  protected t: number;
  private seq = 0;
  protected readonly heap = new TimeQueue<VirtualTimer>();
  protected garbage = 0;
  /** Timer callbacks that threw (swallowed: one node's bug must not stop the simulation). */
  errors = 0;
  /** Timer callbacks run so far. */
  fired = 0;
  private running = false;
  /** With a meter: when the processor has worked off the events run so far. */
  private busyUntil = 0;
  /** With a meter: virtual ms the events have cost so far (the processor's busy time). */
  busyMs = 0;

  /** With a meter: cost added to the event in progress by charge(). */
  protected charged = 0;

  /** `meter`: real ms elapsed (monotonic); given, the clock is one serial processor (see above). */
  constructor(startMs = 0, protected readonly meter?: () => number) { this.t = startMs; }

  now(): number { return this.t; }

  /** Timers waiting to fire (cancelled ones excluded). */
  get pending(): number { return this.heap.size - this.garbage; }

  setTimeout(fn: () => void, ms: number): TimerHandle { return this.add(fn, ms, 0); }

  setInterval(fn: () => void, ms: number): TimerHandle {
    if (!(ms > 0)) throw new Error(`virtual clock: interval ${ms} ms must be positive`);
    return this.add(fn, ms, ms);
  }

  private add(fn: () => void, ms: number, period: number): TimerHandle {
    const timer = new VirtualTimer(this, this.dueAt(ms), this.seq++, fn, period);
    this.heap.push(timer, ms);
    return timer;
  }

  /**
   * Timers set for exactly `ms` go into a FIFO lane of their own instead of the heap (the same
   * order, less work: the simulator sets most of its timers for the one LAN latency).
   */
  fifo(ms: number): void { this.heap.lane(ms); }

  /** When a timer set now for `ms` comes due. */
  protected dueAt(ms: number): number { return this.t + (Number.isFinite(ms) && ms > 0 ? ms : 0); }

  /** When an interval that is firing now comes due again (Node re-arms from when its callback ran: on a busy processor, later than due). */
  protected rearmAt(timer: VirtualTimer): number { return (this.meter ? this.t : timer.at) + timer.period; }

  /** @internal A timer still in the heap was cancelled. */
  discarded(): void { this.garbage++; this.compact(); }

  /**
   * Runs every event due at or before `untilMs`, then sets the time to `untilMs`.
   * Resolves once the promise continuations of the last instant have run too.
   */
  async run(untilMs: number): Promise<void> {
    if (this.running) throw new Error('virtual clock: run() is already in progress');
    this.running = true;
    try {
      await turn(); // continuations of whatever the caller did before run()
      if (this.meter) return await this.runMetered(untilMs, this.meter);
      const h = this.heap;
      for (let top = h.peek(); top !== undefined && top.at <= untilMs; top = h.peek()) {
        const at = top.at;
        this.t = at;
        let n = 0;
        for (let x: VirtualTimer | undefined = top; x !== undefined && x.at === at; x = h.peek()) {
          h.pop();
          if (x.cancelled) { this.garbage--; continue; }
          x.queued = true;
          setImmediate(this.fireQueued, x);
          n++;
        }
        if (n > 0) await turn(); // queued after the instant's events: resolves once their continuations ran
      }
      if (untilMs > this.t) this.t = untilMs;
    } finally {
      this.running = false;
    }
  }

  /** run() on one serial processor: each event alone in a loop turn, timed by the meter. */
  protected async runMetered(untilMs: number, meter: () => number): Promise<void> {
    const h = this.heap;
    for (let x = h.peek(); x !== undefined; x = h.peek()) {
      if (x.cancelled) { h.pop(); this.garbage--; continue; }
      const at = Math.max(x.at, this.busyUntil);
      if (at > untilMs) break;
      h.pop();
      this.t = at;
      this.busyUntil = at + await this.timed(this.fireQueued, x, meter);
    }
    if (untilMs > this.t) this.t = untilMs;
  }

  /** With a meter: runs fn(arg) and the continuations it causes; returns (and adds to busyMs) what they cost. */
  protected async timed<A>(fn: (arg: A) => void, arg: A, meter: () => number): Promise<number> {
    const m0 = meter();
    fn(arg);
    await turn(); // its continuations, and theirs
    const cost = meter() - m0 + this.charged;
    this.charged = 0;
    this.busyMs += cost;
    return cost;
  }

  /**
   * With a meter: adds `ms` to the cost of the event in progress, for work that the modelled
   * process does and this one does not (a real socket's system calls). Without one, nothing.
   */
  charge(ms: number): void { if (this.meter) this.charged += ms; }

  /** run(now() + ms). */
  advance(ms: number): Promise<void> { return this.run(this.t + ms); }

  /**
   * Advances in steps of `stepMs` until `p` settles or `limitMs` of virtual time have
   * passed; returns p's value, or rejects (with p's reason, or a timeout error).
   */
  async until<T>(p: Promise<T>, limitMs: number, stepMs = 10): Promise<T> {
    let done = false;
    const watched = p.finally(() => { done = true; });
    watched.catch(() => {});
    const end = this.t + limitMs;
    while (!done && this.t < end) await this.run(Math.min(end, this.t + stepMs));
    if (!done) throw new Error(`virtual clock: not settled within ${limitMs} virtual ms`);
    return watched;
  }

  /** Runs a timer of the current batch unless it was cancelled meanwhile (an arrow: passed to setImmediate). */
  protected readonly fireQueued = (timer: VirtualTimer): void => {
    timer.queued = false;
    if (timer.cancelled) return;
    if (timer.period > 0) {
      timer.at = this.rearmAt(timer);
      timer.seq = this.seq++;
      this.heap.push(timer);
    } else timer.cancelled = true; // done: a cancel() from now on is a no-op
    this.fired++;
    try { timer.fn(); } catch { this.errors++; }
  };

  /** Drops cancelled timers once they are most of the heap (bounded memory for RPC timeouts that never fire). */
  private compact(): void {
    if (this.garbage < 1024 || this.garbage * 2 < this.heap.size) return;
    this.heap.retain((x) => !x.cancelled);
    this.garbage = 0;
  }
}
