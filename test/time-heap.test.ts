import t from 'tap';
import { TimeHeap, TimeQueue } from '../src/util/time-heap.js';
import { seededRandom } from '../src/util/random.js';

interface Ev { at: number; seq: number }

t.test('pops in (at, seq) order, ties in seq order', async (t) => {
  const r = seededRandom(7), rnd = () => r.float();
  const h = new TimeHeap<Ev>();
  const all: Ev[] = [];
  for (let seq = 0; seq < 2000; seq++) { const e = { at: Math.floor(rnd() * 50), seq }; all.push(e); h.push(e); }
  t.equal(h.size, 2000);
  const out: Ev[] = [];
  for (let e = h.pop(); e !== undefined; e = h.pop()) out.push(e);
  all.sort((a, b) => a.at - b.at || a.seq - b.seq);
  t.same(out, all);
  t.equal(h.size, 0);
  t.equal(h.peek(), undefined);
  t.equal(h.pop(), undefined);
});

t.test('interleaved pushes and pops keep the order; retain drops and keeps a valid heap', async (t) => {
  const r = seededRandom(11), rnd = () => r.float();
  const h = new TimeHeap<Ev>();
  let seq = 0, now = 0;
  for (let i = 0; i < 500; i++) h.push({ at: now + rnd() * 100, seq: seq++ });
  for (let i = 0; i < 1000; i++) {
    const e = h.pop()!;
    t.ok(e.at >= now, 'never earlier than the last popped');
    now = e.at;
    h.push({ at: now + rnd() * 100, seq: seq++ });
  }
  t.equal(h.retain((e) => e.seq % 2 === 0) + h.size, 500);
  let last = -Infinity;
  for (let e = h.pop(); e !== undefined; e = h.pop()) { t.equal(e.seq % 2, 0); if (e.at < last) t.fail('out of order'); last = e.at; }
});

t.test('TimeQueue: lanes give exactly the order of one heap; an out-of-order push goes to the heap', async (t) => {
  const r = seededRandom(3), q = new TimeQueue<Ev>(), h = new TimeHeap<Ev>();
  q.lane(0.2); q.lane(0);
  let now = 0, seq = 0;
  const delays = [0.2, 0, 0.2, 1, 0.2, 5.5];
  const got: Ev[] = [], want: Ev[] = [];
  for (let i = 0; i < 5000; i++) {
    for (let k = r.int(3); k > 0; k--) {
      const d = delays[r.int(delays.length)]!, e = { at: now + d, seq: seq++ };
      q.push(e, d); h.push(e);
    }
    if (r.float() < 0.01) { const e = { at: now, seq: -seq }; q.push(e, 0.2); h.push(e); } // would break lane 0.2's order
    if (q.peek() !== h.peek()) t.fail('peek differs from the heap');
    const a = q.pop(), b = h.pop();
    if (a) { got.push(a); now = a.at; }
    if (b) want.push(b);
  }
  t.equal(q.size, h.size);
  t.equal(q.retain((e) => e.seq % 3 !== 0), h.retain((e) => e.seq % 3 !== 0));
  for (let a = q.pop(), b = h.pop(); a || b; a = q.pop(), b = h.pop()) { got.push(a!); want.push(b!); }
  t.same(got.map((e) => e.seq), want.map((e) => e.seq));
});
