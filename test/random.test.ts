// cryptoRandom serves small requests from a pool of CSPRNG bytes (src/util/random.ts): what it
// hands out must be fresh copies, never views of the pool, and must cross refills correctly.
import t from 'tap';
import { cryptoRandom, seededRandom } from '../src/util/random.js';

t.test('bytes: the asked length, independent copies, fresh across many pool refills', async (t) => {
  const seen = new Set<string>();
  const bad: string[] = [];
  let total = 0;
  for (let n = 1; n <= 70; n++) { // 65..70 take the unpooled path
    for (let k = 0; k < 40; k++) {
      const b = cryptoRandom.bytes(n);
      if (b.length !== n) bad.push(`bytes(${n}) has length ${b.length}`);
      if (Object.getPrototypeOf(b) !== Uint8Array.prototype) bad.push(`bytes(${n}) is not a plain Uint8Array`);
      if (b.byteOffset !== 0 || b.buffer.byteLength !== n) bad.push(`bytes(${n}) is a view (offset ${b.byteOffset} of ${b.buffer.byteLength}), not its own memory`);
      if (n >= 8) seen.add(Buffer.from(b).toString('hex'));
      total += n;
    }
  }
  t.same(bad, [], 'every result: the asked length, a plain Uint8Array with memory of its own');
  t.ok(total > 3 * 4096, 'the test crossed several refills');
  t.equal(seen.size, 63 * 40, 'no 8+ byte value repeats');
});

t.test('bytes: a later request does not change an earlier result', async (t) => {
  const a = cryptoRandom.bytes(32), copy = Uint8Array.from(a);
  for (let i = 0; i < 300; i++) cryptoRandom.bytes(16);
  t.same(a, copy);
});

t.test('float: in [0, 1), spread over the interval', async (t) => {
  const bins = new Array<number>(10).fill(0);
  for (let i = 0; i < 20_000; i++) {
    const x = cryptoRandom.float();
    if (!(x >= 0 && x < 1)) t.fail(`out of range: ${x}`);
    bins[Math.floor(x * 10)]!++;
  }
  // 2,000 expected per bin; 6 standard deviations is about 270.
  for (const b of bins) t.ok(Math.abs(b - 2000) < 300, `bin count ${b} near 2000`);
});

t.test('int: in [0, max)', async (t) => {
  for (const max of [1, 2, 7, 1000, 2 ** 31 - 1]) {
    for (let i = 0; i < 200; i++) {
      const v = cryptoRandom.int(max);
      if (!(Number.isInteger(v) && v >= 0 && v < max)) t.fail(`int(${max}) gave ${v}`);
    }
  }
  t.pass();
});

t.test('seededRandom: the same seed gives the same sequence', async (t) => {
  const a = seededRandom(42), b = seededRandom(42);
  t.same([a.int(1000), a.float(), [...a.bytes(5)]], [b.int(1000), b.float(), [...b.bytes(5)]]);
});
