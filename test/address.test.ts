import t from 'tap';
import fc from 'fast-check';
import { Address, AddressError, RING, base32Decode, base32Encode } from '../src/address/address.js';
import { seededRandom, type RandomSource } from '../src/util/random.js';

const MAX = RING - 1n;
const HALF = RING >> 1n;
const A = (v: bigint): Address => Address.fromBigInt(v);
const arbAddr = fc.oneof(
  fc.bigInt({ min: 0n, max: MAX }),
  // Bias towards the wrap-around seam, where off-by-one bugs live.
  fc.bigInt({ min: 0n, max: 8n }),
  fc.bigInt({ min: MAX - 8n, max: MAX }),
  fc.bigInt({ min: HALF - 4n, max: HALF + 4n }),
).map(A);

t.test('base32 text form', async (t) => {
  t.equal(base32Encode(new TextEncoder().encode('foobar')), 'MZXW6YTBOI', 'RFC 4648 vector, no padding');
  t.same(base32Decode('mzxw6ytboi======'), new TextEncoder().encode('foobar'));
  t.equal(A(0n).key, 'brunet:node:' + 'A'.repeat(32));
  t.equal(A(MAX).key, 'brunet:node:' + '7'.repeat(32));
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), (b) => {
    t.same(base32Decode(base32Encode(b)), b);
  }), { numRuns: 200 });
  fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (b) => {
    const a = Address.fromBytes(b);
    t.equal(a.key.length, 12 + 32);
    t.match(a.key, /^brunet:node:[A-Z2-7]{32}$/);
    t.ok(Address.parse(a.key).equals(a));
    t.same(Address.parse(a.key).bytes, b);
    t.equal(Address.fromBigInt(a.value).key, a.key);
  }), { numRuns: 200 });
});

t.test('parse is case-insensitive and accepts urn:', async (t) => {
  fc.assert(fc.property(arbAddr, (a) => {
    t.ok(Address.parse(a.key.toLowerCase()).equals(a));
    t.ok(Address.parse('urn:' + a.key).equals(a));
    t.ok(Address.parse('URN:' + a.key.toUpperCase()).equals(a));
    t.ok(Address.parse(`  ${a.key}\n`).equals(a), 'surrounding whitespace is trimmed');
  }), { numRuns: 100 });
});

t.test('parse rejects bad strings and lengths', async (t) => {
  const body = 'JOJZG7VO6RFOEZJ6CJJ2WOIJWTXRVRP4';
  t.ok(Address.parse('brunet:node:' + body));
  const bad = [
    '', 'brunet:node:', body, 'node:' + body, 'brunet:nod:' + body, 'urn:urn:brunet:node:' + body,
    'brunet:node:' + body.slice(0, 31), 'brunet:node:' + body + 'A', 'brunet:node:' + body + 'AA',
    'brunet:node:' + body.slice(0, 31) + '1', 'brunet:node:' + body.slice(0, 31) + '!',
    'brunet:node:' + body.slice(0, 16) + ' ' + body.slice(17),
  ];
  for (const s of bad) t.throws(() => Address.parse(s), AddressError, JSON.stringify(s));
  t.throws(() => Address.fromBigInt(-1n), AddressError);
  t.throws(() => Address.fromBigInt(RING), AddressError);
  t.throws(() => Address.fromBytes(new Uint8Array(19)), AddressError);
  t.throws(() => Address.fromBytes(new Uint8Array(21)), AddressError);
});

t.test('random() makes class 0 addresses', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (b) => {
    const src: RandomSource = { bytes: () => b.slice(), float: () => 0, int: () => 0 };
    const a = Address.random(src);
    t.ok(a.isClass0);
    t.equal(a.value, Address.fromBytes(b).value & ~1n, 'only the class bit changes');
  }), { numRuns: 100 });
  const rnd = seededRandom(7);
  for (let i = 0; i < 50; i++) t.ok(Address.random(rnd).isClass0);
  t.notOk(A(1n).isClass0);
  t.ok(Address.ringPoint(-1n).equals(A(MAX - 1n)), 'ringPoint wraps and forces class 0');
});

t.test('left/right/signed distance', async (t) => {
  t.equal(A(0n).leftDistanceTo(A(MAX)), MAX);
  t.equal(A(0n).rightDistanceTo(A(MAX)), 1n);
  t.equal(A(MAX).leftDistanceTo(A(0n)), 1n);
  t.equal(A(MAX).rightDistanceTo(A(0n)), MAX);
  t.equal(A(MAX).distanceTo(A(0n)), 1n, 'wrapping forward is the short way');
  t.equal(A(0n).distanceTo(A(MAX)), -1n);
  t.equal(A(MAX - 1n).distanceTo(A(2n)), 4n);
  t.equal(A(0n).distanceTo(A(HALF)), HALF, '+2^159 is included');
  t.equal(A(HALF).distanceTo(A(0n)), HALF, '-2^159 is excluded, so it reads as +2^159');
  t.equal(A(0n).distanceTo(A(HALF + 1n)), -(HALF - 1n));
  t.equal(A(5n).distanceTo(A(5n)), 0n);
  fc.assert(fc.property(arbAddr, arbAddr, (a, b) => {
    const l = a.leftDistanceTo(b), r = a.rightDistanceTo(b), d = a.distanceTo(b);
    t.ok(l >= 0n && l < RING && r >= 0n && r < RING);
    t.equal((l + r) % RING, 0n);
    t.equal(l, b.rightDistanceTo(a));
    t.ok(d > -HALF && d <= HALF);
    t.equal(((a.value + d) % RING + RING) % RING, b.value, 'a + distance lands on b');
    t.equal(a.absDistanceTo(b), d < 0n ? -d : d);
    t.equal(a.absDistanceTo(b), b.absDistanceTo(a));
  }), { numRuns: 300 });
});

t.test('isBetweenFromLeft / isBetweenFromRight', async (t) => {
  // Clockwise arc MAX-10 -> 10 crosses zero.
  const s = A(MAX - 10n), e = A(10n);
  for (const v of [MAX - 9n, MAX, 0n, 1n, 9n]) t.ok(A(v).isBetweenFromLeft(s, e), `${v} inside`);
  for (const v of [MAX - 10n, 10n, 11n, HALF, MAX - 11n]) t.notOk(A(v).isBetweenFromLeft(s, e), `${v} outside`);
  // Counter-clockwise arc 10 -> MAX-10 crosses zero too.
  for (const v of [9n, 0n, MAX, MAX - 9n]) t.ok(A(v).isBetweenFromRight(e, s), `${v} inside right arc`);
  for (const v of [10n, MAX - 10n, 11n, HALF]) t.notOk(A(v).isBetweenFromRight(e, s), `${v} outside right arc`);
  t.ok(A(5n).isBetweenFromLeft(A(0n), A(10n)));
  t.notOk(A(5n).isBetweenFromRight(A(0n), A(10n)));
  t.ok(A(5n).isBetweenFromRight(A(10n), A(0n)));
  fc.assert(fc.property(arbAddr, arbAddr, (x, p) => {
    t.notOk(x.isBetweenFromLeft(p, p), 'start == end is an empty arc');
    t.notOk(x.isBetweenFromRight(p, p));
  }), { numRuns: 100 });
  fc.assert(fc.property(arbAddr, arbAddr, arbAddr, (x, a, b) => {
    t.equal(x.isBetweenFromRight(a, b), x.isBetweenFromLeft(b, a));
    if (a.equals(b) || x.equals(a) || x.equals(b)) {
      t.notOk(x.isBetweenFromLeft(a, b) && x.isBetweenFromLeft(b, a));
    } else {
      t.not(x.isBetweenFromLeft(a, b), x.isBetweenFromLeft(b, a), 'exactly one of the two arcs');
    }
  }), { numRuns: 300 });
});

t.test('isCloserToFirst', async (t) => {
  t.ok(A(0n).isCloserToFirst(A(MAX), A(5n)), 'distance 1 across the seam beats 5');
  t.notOk(A(0n).isCloserToFirst(A(5n), A(MAX)));
  t.notOk(A(0n).isCloserToFirst(A(3n), A(MAX - 2n)), 'a tie is not closer');
  t.ok(A(MAX).isCloserToFirst(A(1n), A(MAX - 3n)));
  fc.assert(fc.property(arbAddr, arbAddr, arbAddr, (x, a, b) => {
    t.equal(x.isCloserToFirst(a, b), x.absDistanceTo(a) < x.absDistanceTo(b));
    t.notOk(x.isCloserToFirst(a, b) && x.isCloserToFirst(b, a));
  }), { numRuns: 200 });
});
