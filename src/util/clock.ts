// The clock is injected so the same node code runs on real time and, later, in a
// virtual-time simulator. Nothing below the CLI calls Date.now() or setTimeout directly.
export interface TimerHandle { cancel(): void }

export interface Clock {
  /** Milliseconds, monotonic enough for timeouts and ages. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
}

export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout(fn, ms) {
    const h = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(h) };
  },
  setInterval(fn, ms) {
    const h = setInterval(fn, ms);
    return { cancel: () => clearInterval(h) };
  },
};
