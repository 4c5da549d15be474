// The simulator's loop processor: bench:ring's one Node event loop (libuv 1.46, Node 20) as
// a VirtualClock with a meter that runs its events in the passes that loop makes, instead of
// one at a time in the order they came due (the serial processor, VirtualClock's meter mode).
// Each pass:
//   1. poll: the sockets that hold an unread datagram when the pass starts are ready (epoll,
//      level-triggered), oldest unread datagram first; each is read in turn, up to BATCH (32)
//      datagrams, fewer when it runs dry, and a datagram that arrived while the pass ran is
//      read too if its socket is read after it arrived (loopback delivers within sendto);
//   2. timers: the loop time is updated once, to the ms (uv_update_time: an integer ms), and
//      every timer due by then runs, in due order; one set during the phase waits for the next.
// Then the next pass, or, with nothing ready and nothing due, a sleep until the next datagram
// or timer. Every callback costs what the meter says it and its promise continuations took
// (Node drains microtasks after each callback), and the clock's time moves on by that cost,
// so a callback sees the time at which the loop reached it. Node counts a timer from the loop
// time read when it is set (timers.js getLibuvNow, which updates it: measured, a 20 ms timer
// set 50 ms into a callback fires 20 ms after it was set, not at once), in whole ms, and a
// delay under 1 ms is 1 ms (setTimeout(fn, 0) included); an interval re-arms from the time its
// callback started. Datagrams come in through deliver() (SimNetwork's `io` option; a connect
// completes within the event that asked for it, as a UDP createEdge does). With a `share` below
// 1 the process has that fraction of a core: each callback takes its cost over the share.
import { VirtualClock } from '../../src/util/virtual-clock.js';
import { TimeHeap } from '../../src/util/time-heap.js';

/**
 * Datagrams one socket gives per pass (libuv's uv__udp_recvmsg bound): measured on Node 20, 100
 * datagrams queued at one socket reach the check phase after 32, 64, 96 and 100 'message' events.
 */
export const BATCH = 32;

interface Arrival { at: number; seq: number; admit: () => boolean; fn: () => void }
/** entry: the seq of its valid entry among the ready (-1: none); taken: in this pass's ready list, until read. */
interface Sock { q: Arrival[]; head: number; entry: number; taken: boolean }
interface Entry { at: number; seq: number; sock: Sock }

export class LoopClock extends VirtualClock {
  private readonly socks = new WeakMap<object, Sock>();
  /** Ready sockets by their oldest unread datagram (an entry is stale once its socket's `entry` moved on). */
  private readonly ready = new TimeHeap<Entry>();
  private ioSeq = 0;
  private unread = 0;
  /** Passes run so far. */
  passes = 0;

  /**
   * share: the fraction of a core the modelled process gets (1: a core of its own); each
   * callback then takes its cost / share of the clock's time, as on a core shared with others.
   */
  constructor(startMs: number, meter: () => number, private readonly batch = BATCH, private readonly share = 1) {
    super(startMs, meter);
    if (!(share > 0 && share <= 1)) throw new Error(`loop clock: share ${share} must be in (0, 1]`);
  }

  override get pending(): number { return super.pending + this.unread; }

  /**
   * A datagram for socket `to` that arrives `ms` from now. When the loop reads it, admit() says
   * whether it was kept (false: dropped at a full receive buffer; it is not counted in the
   * batch and costs nothing), then fn handles it.
   */
  deliver(to: object, ms: number, admit: () => boolean, fn: () => void): void {
    let s = this.socks.get(to);
    if (!s) this.socks.set(to, s = { q: [], head: 0, entry: -1, taken: false });
    const a: Arrival = { at: this.t + Math.max(0, ms), seq: this.ioSeq++, admit, fn };
    const q = s.q;
    let i = q.length;
    while (i > s.head && q[i - 1]!.at > a.at) i--; // in arrival order (equal latencies: at the end)
    q.splice(i, 0, a);
    this.unread++;
    if (i === s.head && !s.taken) this.queue(s); // a new oldest datagram (a taken socket is queued after its read)
  }

  protected override async timed<A>(fn: (arg: A) => void, arg: A, meter: () => number): Promise<number> {
    const cost = await super.timed(fn, arg, meter); // busyMs keeps the CPU
    return this.share === 1 ? cost : cost / this.share;
  }

  protected override dueAt(ms: number): number { return Math.floor(this.t) + nodeDelay(ms); }

  protected override rearmAt(timer: { period: number }): number { return Math.floor(this.t) + nodeDelay(timer.period); }

  protected override async runMetered(untilMs: number, meter: () => number): Promise<void> {
    for (;;) {
      const io = this.oldest(), timer = this.nextTimer();
      if (io > this.t && timer > Math.floor(this.t)) { // nothing to do: sleep until something is
        const wake = Math.min(io, Math.ceil(timer)); // a timer is due once the whole-ms loop time reaches it
        if (wake > untilMs) break;
        this.t = wake;
      }
      if (this.t > untilMs) return; // busy past the bound: the next run() goes on from here
      this.passes++;
      await this.poll(meter);
      await this.timers(meter);
    }
    if (untilMs > this.t) this.t = untilMs;
  }

  /** Phase 1: the sockets ready at the pass's start, each read up to the batch. */
  private async poll(meter: () => number): Promise<void> {
    const start = this.t, ready: Sock[] = [];
    for (let e = this.ready.peek(); e !== undefined && e.at <= start; e = this.ready.peek()) {
      this.ready.pop();
      if (e.sock.entry === e.seq) { e.sock.entry = -1; e.sock.taken = true; ready.push(e.sock); }
    }
    for (const s of ready) {
      let n = 0;
      while (n < this.batch && s.head < s.q.length && s.q[s.head]!.at <= this.t) {
        const a = s.q[s.head]!;
        s.q[s.head++] = undefined as unknown as Arrival; // read: let it go
        this.unread--;
        if (!a.admit()) continue;
        n++;
        this.t += await this.timed(run, a.fn, meter);
      }
      s.taken = false;
      if (s.head > 64 && s.head * 2 > s.q.length) { s.q.splice(0, s.head); s.head = 0; }
      if (s.head < s.q.length) this.queue(s);
    }
  }

  /** Phase 2: every timer due at the loop time (whole ms) when the phase starts. */
  private async timers(meter: () => number): Promise<void> {
    const now = Math.floor(this.t);
    while (this.nextTimer() <= now) this.t += await this.timed(this.fireQueued, this.heap.pop()!, meter);
  }

  /** When the earliest live timer is due (Infinity: none); drops cancelled ones from the top. */
  private nextTimer(): number {
    const h = this.heap;
    let x = h.peek();
    for (; x !== undefined && x.cancelled; x = h.peek()) { h.pop(); this.garbage--; }
    return x !== undefined ? x.at : Infinity;
  }

  /** When the oldest unread datagram of any socket not being read arrived (Infinity: none). */
  private oldest(): number {
    let e = this.ready.peek();
    for (; e !== undefined && e.sock.entry !== e.seq; e = this.ready.peek()) this.ready.pop();
    return e !== undefined ? e.at : Infinity;
  }

  /** Puts the socket among the ready ones by its oldest unread datagram (an older entry goes stale). */
  private queue(s: Sock): void {
    const head = s.q[s.head]!;
    s.entry = head.seq;
    this.ready.push({ at: head.at, seq: head.seq, sock: s });
  }
}

const run = (fn: () => void): void => fn();

/** Node's timers.js: a delay that is not in [1, 2^31 - 1] ms is 1 ms. */
const nodeDelay = (ms: number): number => (ms >= 1 && ms <= 2 ** 31 - 1 ? ms : 1);

