// Fragment reassembly and repair, as properties (fast-check): whatever is lost, duplicated
// or reordered, every message the sender still holds arrives once, whole and in order after
// its requests are answered — provided one of its fragments got through, as the receiver
// cannot ask for a message it never heard of (that is an ordinary datagram loss); garbage
// never throws and never leaks budget.
import fc from 'fast-check';
import t from 'tap';
import {
  decodeRequest, FragmentBudget, fragmentCount, FRAGMENT_HEADER, FRAGMENT_PAYLOAD, MAX_DATAGRAM, MAX_MESSAGE, Reassembly, Retained,
  writeFragmentFields,
} from '../src/transport/udp-fragments.js';

const COMMON = Buffer.from([1, 3, 0, 0, 0, 7, 0, 0, 0, 9]);

/** The datagrams of message `id` (all, or the listed indices), as the UDP listener sends them. */
function datagrams(id: number, payload: Uint8Array, indices?: number[]): Buffer[] {
  const count = fragmentCount(payload.length);
  return (indices ?? Array.from({ length: count }, (_x, i) => i)).map((i) => {
    const head = Buffer.alloc(FRAGMENT_HEADER);
    COMMON.copy(head);
    writeFragmentFields(head, id, i, count);
    return Buffer.concat([head, payload.subarray(i * FRAGMENT_PAYLOAD, (i + 1) * FRAGMENT_PAYLOAD)]);
  });
}

/** A request body as the listener sends it, with the 10-byte header the decoder expects. */
const asDatagram = (body: Buffer) => Buffer.concat([Buffer.from([1, 4, 0, 0, 0, 9, 0, 0, 0, 7]), body]);

t.test('lost, duplicated and reordered fragments: all messages once, whole, in order', async (t) => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.integer({ min: FRAGMENT_PAYLOAD + 1, max: 20 * FRAGMENT_PAYLOAD }), { minLength: 1, maxLength: 12 }),
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.array(fc.nat(), { maxLength: 40 }),
    fc.array(fc.nat(), { maxLength: 10 }),
    fc.boolean(),
    async (sizes, firstId, lossSeeds, dupSeeds, shuffleWithin) => {
      const budget = new FragmentBudget(), sendBudget = new FragmentBudget();
      const got: Uint8Array[] = [];
      let lost = 0;
      const re = new Reassembly(budget, (m) => got.push(m), () => { lost++; });
      const kept = new Retained(sendBudget);
      const msgs = sizes.map((n, k) => Uint8Array.from({ length: n }, (_x, i) => (i * 13 + k * 7) & 255));
      const ids = msgs.map((_m, k) => (firstId + k) >>> 0);
      // First pass: every datagram, some lost, some twice, optionally shuffled within a message.
      const wire: Buffer[] = [];
      const firstOf: number[] = [];
      msgs.forEach((m, k) => {
        kept.keep(ids[k]!, m, 0);
        const ds = datagrams(ids[k]!, m);
        if (shuffleWithin) ds.reverse();
        firstOf.push(wire.length);
        wire.push(...ds);
      });
      const lose = new Set(lossSeeds.map((s) => s % wire.length));
      // Each message keeps at least one fragment (the last of its run).
      firstOf.forEach((start, k) => {
        const end = firstOf[k + 1] ?? wire.length;
        let all = true;
        for (let i = start; i < end; i++) all &&= lose.has(i);
        if (all) lose.delete(end - 1);
      });
      const dup = new Set(dupSeeds.map((s) => s % wire.length));
      let now = 0;
      for (const [i, d] of wire.entries()) {
        if (!lose.has(i)) re.add(d, now);
        if (dup.has(i)) re.add(d, now);
      }
      // Repairs: time passes, requests go out, the sender answers them (nothing lost now).
      for (let round = 0; round < 4 && re.pending > 0; round++) {
        now += 30;
        for (const body of re.requests(now)) {
          const req = decodeRequest(asDatagram(body));
          if (!req) throw new Error('the receiver sent an undecodable request');
          const m = kept.take(req.id, req.count, now);
          if (m) for (const d of datagrams(req.id, m, req.missing)) re.add(d, now);
        }
      }
      if (lost !== 0) throw new Error(`${lost} messages given up`);
      if (got.length !== msgs.length) throw new Error(`${got.length} of ${msgs.length} delivered`);
      got.forEach((g, k) => { if (!Buffer.from(g).equals(Buffer.from(msgs[k]!))) throw new Error(`message ${k} differs or out of order`); });
      re.release();
      kept.release();
      if (budget.used !== 0 || sendBudget.used !== 0) throw new Error(`budget leak ${budget.used}/${sendBudget.used}`);
    },
  ), { numRuns: 150 });
  t.pass('150 random loss patterns repaired');
});

t.test('garbage never throws, never delivers, never leaks', async (t) => {
  await fc.assert(fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: MAX_DATAGRAM + 20 }), { maxLength: 60 }), (ds) => {
    const budget = new FragmentBudget(1 << 20);
    let delivered = 0;
    const re = new Reassembly(budget, () => { delivered++; });
    for (const d of ds) {
      const b = Buffer.from(d);
      if (b.length >= 2) { b[0] = 1; b[1] = 3; }
      re.add(b, 0);
      if (budget.used > budget.limit) throw new Error('over budget');
    }
    re.requests(5000);
    decodeRequest(Buffer.concat(ds.map((d) => Buffer.from(d))).subarray(0, 400));
    re.release();
    if (budget.used !== 0) throw new Error(`leak ${budget.used}`);
    return delivered <= ds.length;
  }), { numRuns: 300 });
  t.pass('300 random datagram sequences');
});

t.test('a sender keeps a bounded amount, for a bounded time, and resends a bounded number of times', async (t) => {
  const budget = new FragmentBudget();
  const kept = new Retained(budget);
  const big = new Uint8Array(1 << 20);
  for (let i = 0; i < 20; i++) kept.keep(i, big, 0);
  t.ok(budget.used <= 8 << 20, `${budget.used} bytes kept for one edge (at most 8 MB)`);
  t.equal(kept.take(0, Math.ceil(big.length / FRAGMENT_PAYLOAD), 0), undefined, 'the oldest went first');
  const count = Math.ceil(big.length / FRAGMENT_PAYLOAD);
  t.ok(kept.take(19, count, 10), 'the newest is there');
  t.ok(kept.take(19, count, 10) && kept.take(19, count, 10), 'up to three times');
  t.equal(kept.take(19, count, 10), undefined, 'not a fourth');
  t.equal(kept.take(18, count + 1, 10), undefined, 'a request with the wrong count is refused');
  kept.prune(2000);
  t.equal(kept.size, 0, 'all gone after a second');
  t.equal(budget.used, 0, 'and the budget with them');
});

t.test('a sender\'s kept copies: whatever the sizes, each message still kept comes back intact, and the original may be reused at once', async (t) => {
  await fc.assert(fc.property(
    fc.array(fc.integer({ min: FRAGMENT_PAYLOAD + 1, max: MAX_MESSAGE }), { minLength: 1, maxLength: 100 }),
    (sizes) => {
      const budget = new FragmentBudget();
      const kept = new Retained(budget);
      const scratch = new Uint8Array(MAX_MESSAGE);
      const fill = (k: number, n: number) => { for (let i = 0; i < n - 1; i += 997) scratch[i] = (i + k) & 255; scratch[n - 1] = k & 255; };
      const intact = (id: number, got: Uint8Array | undefined, len: number) => {
        if (!got || got.length !== len || got[len - 1] !== (id & 255)) return false;
        for (let i = 0; i < len - 1; i += 997) if (got[i] !== ((i + id) & 255)) return false;
        return true;
      };
      sizes.forEach((n, k) => {
        fill(k, n);
        kept.keep(k, scratch.subarray(0, n), 0);
        scratch.fill(0, 0, n);  // the caller's buffer dies or is reused: the copy must not care
        if (!intact(k, kept.take(k, fragmentCount(n), 0), n)) throw new Error(`the newest message ${k} is not kept intact`);
      });
      // Every message still kept (a second take each) is intact, and they are all the budget holds.
      let bytes = 0;
      sizes.forEach((n, k) => {
        const got = kept.take(k, fragmentCount(n), 0);
        if (got && !intact(k, got, n)) throw new Error(`message ${k} corrupted`);
        bytes += got ? n : 0;
      });
      if (bytes > 8 << 20 || budget.used !== bytes) throw new Error(`${bytes} bytes kept, budget ${budget.used}`);
      kept.release();
      return budget.used === 0 && kept.size === 0;
    }), { numRuns: 200 });
  t.pass('200 random size sequences');
});
