// The simulator's scheduler: time order, ties in insertion order, cancel, intervals,
// promise continuations at the instant that caused them, determinism.
import fc from 'fast-check';
import t from 'tap';
import { VirtualClock } from '../src/util/virtual-clock.js';

t.test('timers fire in time order, ties in the order they were set', async (t) => {
  const c = new VirtualClock();
  const log: string[] = [];
  c.setTimeout(() => log.push(`b@${c.now()}`), 20);
  c.setTimeout(() => log.push(`a@${c.now()}`), 10);
  c.setTimeout(() => log.push(`c@${c.now()}`), 20);
  c.setTimeout(() => log.push(`z@${c.now()}`), 0);
  await c.run(15);
  t.same(log, ['z@0', 'a@10']);
  t.equal(c.now(), 15, 'run() leaves the clock at its end');
  await c.run(100);
  t.same(log, ['z@0', 'a@10', 'b@20', 'c@20']);
  t.equal(c.pending, 0);
});

t.test('cancel before firing; cancelling twice or after firing is harmless', async (t) => {
  const c = new VirtualClock();
  let n = 0;
  const h = c.setTimeout(() => n++, 5);
  const g = c.setTimeout(() => n += 10, 6);
  h.cancel(); h.cancel();
  t.equal(c.pending, 1);
  await c.run(10);
  g.cancel();
  t.equal(n, 10);
});

t.test('intervals repeat every period until cancelled, even from their own callback', async (t) => {
  const c = new VirtualClock();
  const at: number[] = [];
  const h = c.setInterval(() => { at.push(c.now()); if (at.length === 4) h.cancel(); }, 25);
  await c.run(1000);
  t.same(at, [25, 50, 75, 100]);
  t.throws(() => c.setInterval(() => {}, 0), /must be positive/);
});

t.test('an async chain runs at the instant that started it, before later timers', async (t) => {
  const c = new VirtualClock();
  const log: string[] = [];
  const deep = async (k: number): Promise<number> => { for (let i = 0; i < k; i++) await Promise.resolve(); return c.now(); };
  c.setTimeout(() => { void deep(200).then((when) => log.push(`chain done at ${when}, now ${c.now()}`)); }, 10);
  c.setTimeout(() => log.push(`next timer at ${c.now()}`), 11);
  await c.run(20);
  t.same(log, ['chain done at 10, now 10', 'next timer at 11']);
});

t.test('events of one instant: each sees the whole async chain of the one before it', async (t) => {
  const c = new VirtualClock();
  const log: string[] = [];
  let state = 'idle';
  const deep = async (k: number): Promise<void> => { for (let i = 0; i < k; i++) await Promise.resolve(); };
  // Three events at the same instant (as three packets arriving together): the first starts a
  // 100-await chain, the second must find it finished and starts its own, the third checks that.
  c.setTimeout(() => { state = 'first running'; void deep(100).then(() => { state = 'first done'; }); }, 7);
  c.setTimeout(() => { log.push(`second sees ${state}`); void deep(100).then(() => { state = 'second done'; }); }, 7);
  c.setTimeout(() => { log.push(`third sees ${state} at ${c.now()}`); }, 7);
  // A cancelled timer between them, and one cancelled by an event of the same instant once taken off the queue.
  c.setTimeout(() => log.push('cancelled early'), 7).cancel();
  let late = { cancel: () => {} };
  c.setTimeout(() => late.cancel(), 7);
  late = c.setTimeout(() => log.push('cancelled by a sibling'), 7);
  const early = c.setTimeout(() => log.push('at 3'), 3);
  await c.run(7);
  early.cancel(); // after it fired: harmless
  t.same(log, ['at 3', 'second sees first done', 'third sees second done at 7']);
  t.equal(c.pending, 0, 'timers cancelled in their batch or after firing leave no garbage counted');
});

t.test('a timer set for the current instant runs after the continuations of the one that set it', async (t) => {
  const c = new VirtualClock();
  const log: string[] = [];
  c.setTimeout(() => {
    c.setTimeout(() => log.push('zero-delay timer'), 0);
    void Promise.resolve().then(() => log.push('continuation'));
  }, 5);
  await c.run(5);
  t.same(log, ['continuation', 'zero-delay timer']);
});

t.test('until() drives the clock until a promise settles, or fails after its limit', async (t) => {
  const c = new VirtualClock();
  const sleep = (ms: number) => new Promise<number>((r) => c.setTimeout(() => r(c.now()), ms));
  t.equal(await c.until(sleep(1234), 5000), 1234);
  await t.rejects(c.until(sleep(10_000), 100), /not settled within 100 virtual ms/);
  await t.rejects(c.until(new Promise((_r, j) => c.setTimeout(() => j(new Error('boom')), 5)), 100), /boom/);
});

t.test('a throwing callback is counted and does not stop the queue', async (t) => {
  const c = new VirtualClock();
  let ran = false;
  c.setTimeout(() => { throw new Error('x'); }, 1);
  c.setTimeout(() => { ran = true; }, 2);
  await c.run(3);
  t.ok(ran);
  t.equal(c.errors, 1);
});

t.test('many cancelled timers are compacted away without changing the order of the rest', async (t) => {
  const c = new VirtualClock();
  const fired: number[] = [];
  const keep = [7, 3, 9, 1];
  for (const k of keep) c.setTimeout(() => fired.push(k), k);
  for (let i = 0; i < 5000; i++) c.setTimeout(() => fired.push(-1), 1 + (i % 13)).cancel();
  t.equal(c.pending, 4);
  await c.run(100);
  t.same(fired, [1, 3, 7, 9]);
});

t.test('property: any schedule fires sorted by (time, insertion), cancelled ones never, and twice the same', async (t) => {
  const trace = async (ops: { delay: number; cancel: boolean; nested: number }[]) => {
    const c = new VirtualClock();
    const out: string[] = [];
    ops.forEach((o, i) => {
      const h = c.setTimeout(() => {
        out.push(`${i}@${c.now()}`);
        if (o.nested >= 0) c.setTimeout(() => out.push(`${i}+@${c.now()}`), o.nested);
      }, o.delay);
      if (o.cancel) h.cancel();
    });
    await c.run(1000);
    return out;
  };
  await fc.assert(fc.asyncProperty(
    fc.array(fc.record({ delay: fc.integer({ min: 0, max: 50 }), cancel: fc.boolean(), nested: fc.integer({ min: -1, max: 20 }) }), { maxLength: 40 }),
    async (ops) => {
      const a = await trace(ops);
      const b = await trace(ops);
      if (a.join() !== b.join()) return false;
      const top = a.filter((s) => !s.includes('+')).map((s) => s.split('@').map(Number) as [number, number]);
      const want = ops.map((o, i) => [i, o.delay, o.cancel] as const).filter((x) => !x[2])
        .sort((x, y) => x[1] - y[1] || x[0] - y[0]).map((x) => [x[0], x[1]]);
      const times = a.map((s) => Number(s.split('@')[1]));
      return JSON.stringify(top) === JSON.stringify(want) && times.every((v, i) => i === 0 || v >= times[i - 1]!);
    }), { numRuns: 100 });
  t.pass('property held');
});

t.test('two events at one instant: the second sees what the first one\'s continuations did', async (t) => {
  const c = new VirtualClock();
  let state = 'idle';
  const seen: string[] = [];
  // A "handshake reply" whose handler finishes after a chain of awaits, then a "data packet"
  // at the same instant: on a real event loop the first callback's microtasks run before the second.
  c.setTimeout(() => {
    void (async () => {
      for (let i = 0; i < 100; i++) await Promise.resolve();
      state = 'linked';
    })();
  }, 5);
  c.setTimeout(() => seen.push(state), 5);
  await c.run(10);
  t.same(seen, ['linked']);
});
