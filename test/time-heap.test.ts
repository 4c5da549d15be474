import t from 'tap';
import { TimeHeap } from '../src/util/time-heap.js';
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
