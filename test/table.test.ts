// ConnectionTable ring queries against a brute-force reference, table events, and the
// size-estimate / shortcut-distance arithmetic the overlords build on.
import t from 'tap';
import fc from 'fast-check';
import { Address, RING } from '../src/address/address.js';
import { Connection } from '../src/connection/connection.js';
import { estimateSize } from '../src/connection/overlord/overlord.js';
import { desiredShortcuts, shortcutDistance } from '../src/connection/overlord/shortcut.js';
import { ConnectionTable } from '../src/connection/table.js';
import type { Edge } from '../src/transport/edge.js';
import { TransportAddress } from '../src/transport/ta.js';

let edgeSeq = 0;
/** Just enough of an Edge for Connection and ConnectionTable (which only use it as a key). */
function fakeEdge(): Edge {
  const n = ++edgeSeq;
  const e: Edge = {
    id: `fake/${n}`,
    kind: 'function',
    localTA: new TransportAddress('function', 'localhost', 1),
    remoteTA: new TransportAddress('function', 'localhost', 1 + (n % 65000)),
    inbound: false,
    closed: false,
    send: () => {},
    close: () => {},
    onPacket: () => {},
    onClose: () => {},
  };
  return e;
}
function conn(a: Address | bigint, type = 'structured.near', at = 0): Connection {
  const address = typeof a === 'bigint' ? Address.fromBigInt(a) : a;
  return new Connection(address, fakeEdge(), type, true, at, { address, tas: [] });
}

// ---- brute-force reference ----
function refNeighbors(all: Connection[], a: Address, n: number): { left: bigint[]; right: bigint[] } {
  const s = all.filter((c) => c.structured && !c.address.equals(a));
  const left = [...s].sort((x, y) => cmp(a.leftDistanceTo(x.address), a.leftDistanceTo(y.address))).slice(0, n);
  const right = [...s].sort((x, y) => cmp(a.rightDistanceTo(x.address), a.rightDistanceTo(y.address))).slice(0, n);
  return { left: left.map((c) => c.address.value), right: right.map((c) => c.address.value) };
}
function refNearest(all: Connection[], a: Address, perSide: number): bigint[] {
  const { left, right } = refNeighbors(all, a, perSide);
  const out: bigint[] = [];
  for (let i = 0; i < perSide; i++) for (const v of [left[i], right[i]]) if (v !== undefined && !out.includes(v)) out.push(v);
  return out;
}
const cmp = (x: bigint, y: bigint) => (x < y ? -1 : x > y ? 1 : 0);
const vals = (cs: readonly Connection[]) => cs.map((c) => c.address.value);

// Addresses: anywhere on the ring, or clustered at either end of it so wrap-around and
// collisions happen often.
const MAX = RING - 1n;
const addrValue = fc.oneof(
  fc.bigInt({ min: 0n, max: MAX }),
  fc.bigInt({ min: 0n, max: 64n }),
  fc.bigInt({ min: MAX - 64n, max: MAX }),
);
const TYPES = ['structured.near', 'structured.shortcut', 'structured.ondemand', 'leaf'];
const entry = fc.record({ v: addrValue, type: fc.constantFrom(...TYPES) });

t.test('neighborsOf / bracket / nearestTo match a brute-force reference', (t) => {
  let withSelfHits = 0, leafQueries = 0, wraps = 0;
  fc.assert(fc.property(
    fc.array(entry, { maxLength: 40 }),
    fc.oneof(addrValue, fc.nat()),
    fc.integer({ min: 0, max: 8 }),
    (entries, q, n) => {
      const table = new ConnectionTable(Address.fromBigInt(0n), () => 0);
      for (const e of entries) table.add(conn(e.v, e.type));
      const all = [...table.all()];
      // Query points: a random address, and (when present) addresses in the table.
      const queries: Address[] = [Address.fromBigInt(typeof q === 'bigint' ? q : BigInt(q) % RING)];
      if (all.length > 0) {
        const pick = all[(typeof q === 'bigint' ? Number(q % 1000n) : q) % all.length]!;
        queries.push(pick.address);
        if (pick.structured) withSelfHits++; else leafQueries++;
        const s = table.structured;
        if (s.length > 0) queries.push(s[s.length - 1]!.address, s[0]!.address);
      }
      for (const a of queries) {
        const got = table.neighborsOf(a, n);
        const want = refNeighbors(all, a, n);
        if (vals(got.left).join() !== want.left.join() || vals(got.right).join() !== want.right.join()) {
          throw new Error(`neighborsOf(${a.value}, ${n}): got ${vals(got.left)} | ${vals(got.right)}, want ${want.left} | ${want.right}`);
        }
        if (got.left.some((c) => c.address.equals(a)) || got.right.some((c) => c.address.equals(a))) throw new Error('query address itself returned');
        const b = table.bracket(a);
        const w1 = refNeighbors(all, a, 1);
        if (b.left?.address.value !== w1.left[0] || b.right?.address.value !== w1.right[0]) throw new Error(`bracket(${a.value})`);
        if (w1.left[0] !== undefined && w1.left[0] < a.value) wraps++;
        const per = Math.max(1, n);
        const near = vals(table.nearestTo(a, per));
        if (near.join() !== refNearest(all, a, per).join()) throw new Error(`nearestTo(${a.value}, ${per}): got ${near}, want ${refNearest(all, a, per)}`);
      }
    }), { numRuns: 1500 });
  t.ok(withSelfHits > 100, `queried a structured member of the table ${withSelfHits} times`);
  t.ok(leafQueries > 50, `queried a leaf member of the table ${leafQueries} times`);
  t.ok(wraps > 100, `left neighbour wrapped past 2^160 ${wraps} times`);
  t.end();
});

t.test('neighborsOf on small fixed rings', (t) => {
  const table = new ConnectionTable(Address.fromBigInt(0n), () => 0);
  t.same(table.neighborsOf(Address.fromBigInt(5n), 2), { left: [], right: [] }, 'empty table');
  t.same(table.bracket(Address.fromBigInt(5n)), { left: undefined, right: undefined });
  t.same(table.nearestTo(Address.fromBigInt(5n), 3), []);
  const a = conn(10n), b = conn(20n), z = conn(MAX - 1n);
  table.add(a); table.add(b); table.add(z);
  const q = (v: bigint, n: number) => { const r = table.neighborsOf(Address.fromBigInt(v), n); return [vals(r.left), vals(r.right)]; };
  t.same(q(15n, 1), [[20n], [10n]], 'between two');
  t.same(q(25n, 2), [[MAX - 1n, 10n], [20n, 10n]], 'wraps clockwise past the top of the ring');
  t.same(q(5n, 2), [[10n, 20n], [MAX - 1n, 20n]], 'wraps counter-clockwise past zero');
  t.same(q(10n, 5), [[20n, MAX - 1n], [MAX - 1n, 20n]], 'the queried member is skipped; never more than the others');
  t.same(q(MAX, 1), [[10n], [MAX - 1n]]);
  t.same(q(0n, 3), [[10n, 20n, MAX - 1n], [MAX - 1n, 20n, 10n]], 'n larger than the table: every member once per side');
  t.same(vals(table.nearestTo(Address.fromBigInt(15n), 2)), [20n, 10n, MAX - 1n], 'nearestTo interleaves and deduplicates');
  // A table holding only the queried address.
  const solo = new ConnectionTable(Address.fromBigInt(0n), () => 0);
  solo.add(conn(7n));
  t.same(solo.neighborsOf(Address.fromBigInt(7n), 2), { left: [], right: [] }, 'only the queried address: no neighbours');
  t.same(vals(solo.neighborsOf(Address.fromBigInt(8n), 2).left), [7n], 'a single other member is both neighbours');
  t.same(vals(solo.neighborsOf(Address.fromBigInt(8n), 2).right), [7n]);
  t.end();
});

t.test('add / remove / setType events and the structured snapshot', (t) => {
  let now = 100;
  const table = new ConnectionTable(Address.fromBigInt(0n), () => now);
  const events: string[] = [];
  table.onChange((ev, c) => events.push(`${ev}:${c.address.value}:${c.type}`));

  const a = conn(5n), l = conn(7n, 'leaf'), s = conn(9n, 'structured.shortcut');
  table.add(a); table.add(l); table.add(s);
  t.same(events, ['add:5:structured.near', 'add:7:leaf', 'add:9:structured.shortcut']);
  t.equal(table.size, 3);
  t.equal(table.lastChange, 100);
  t.same(vals(table.structured), [5n, 9n], 'structured snapshot excludes the leaf');
  t.equal(table.get(Address.fromBigInt(7n)), l, 'the leaf is still in the table');
  t.equal(table.getByEdge(l.edge), l);
  t.same(vals(table.neighborsOf(Address.fromBigInt(6n), 1).left), [9n], 'routing queries skip the leaf');

  // The snapshot is replaced, never mutated.
  const snap = table.structured;
  now = 200;
  events.length = 0;
  table.setType(l, 'structured.near');
  t.same(events, ['type:7:structured.near']);
  t.equal(table.lastChange, 200);
  t.same(vals(snap), [5n, 9n], 'an old snapshot is unchanged');
  t.same(vals(table.structured), [5n, 7n, 9n], 'the upgraded connection joins the snapshot');
  events.length = 0;
  table.setType(l, 'structured.near');
  t.same(events, [], 'setType to the same type is a no-op');
  table.setType(l, 'leaf');
  t.same(events, ['type:7:leaf']);
  t.same(vals(table.structured), [5n, 9n], 'a downgraded connection leaves the snapshot');

  // Replacing a connection to the same address: remove of the old one, then add.
  events.length = 0;
  const a2 = conn(5n, 'structured.shortcut');
  table.add(a2);
  t.same(events, ['remove:5:structured.near', 'add:5:structured.shortcut']);
  t.equal(table.get(Address.fromBigInt(5n)), a2);
  t.equal(table.getByEdge(a.edge), undefined, 'the old edge is forgotten');
  t.equal(table.getByEdge(a2.edge), a2);
  t.equal(table.size, 3);

  // Removal.
  events.length = 0;
  now = 300;
  t.equal(table.remove(a), false, 'removing a replaced connection does nothing');
  t.same(events, []);
  t.equal(table.remove(s), true);
  t.same(events, ['remove:9:structured.shortcut']);
  t.equal(table.lastChange, 300);
  t.equal(table.remove(s), false, 'a second remove does nothing');
  t.equal(table.remove(conn(12345n)), false, 'removing a stranger does nothing');
  t.same(events, ['remove:9:structured.shortcut']);
  t.same(vals(table.structured), [5n]);
  t.same([...table.all()].map((c) => c.address.value).sort(cmp), [5n, 7n]);
  t.equal(table.getByEdge(s.edge), undefined);
  t.end();
});

t.test('random add/remove/setType sequences keep the snapshot sorted and consistent', (t) => {
  const op = fc.oneof(
    fc.record({ k: fc.constant('add' as const), v: fc.bigInt({ min: 0n, max: 40n }), type: fc.constantFrom(...TYPES) }),
    fc.record({ k: fc.constant('remove' as const), v: fc.bigInt({ min: 0n, max: 40n }) }),
    fc.record({ k: fc.constant('type' as const), v: fc.bigInt({ min: 0n, max: 40n }), type: fc.constantFrom(...TYPES) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
    const table = new ConnectionTable(Address.fromBigInt(0n), () => 0);
    const model = new Map<bigint, string>();
    let events = 0, expected = 0;
    table.onChange(() => events++);
    for (const o of ops) {
      const cur = table.get(Address.fromBigInt(o.v));
      if (o.k === 'add') { table.add(conn(o.v, o.type)); expected += cur ? 2 : 1; model.set(o.v, o.type); }
      else if (o.k === 'remove') { if (cur) { table.remove(cur); expected++; model.delete(o.v); } }
      else if (cur) { if (cur.type !== o.type) expected++; table.setType(cur, o.type); model.set(o.v, o.type); }
    }
    const want = [...model].filter(([, ty]) => ty.startsWith('structured')).map(([v]) => v).sort(cmp);
    if (vals(table.structured).join() !== want.join()) throw new Error('snapshot');
    if (table.size !== model.size) throw new Error('size');
    if (events !== expected) throw new Error(`events ${events} != ${expected}`);
    for (const c of table.all()) if (table.getByEdge(c.edge) !== c) throw new Error('byEdge');
  }), { numRuns: 500 });
  t.pass('500 random operation sequences');
  t.end();
});

t.test('shortcutDistance', (t) => {
  // The exact lower bound 2^160/n is missed by a relative ~1e-15 (e = 160 - log2 n is a double
  // near 2^7, so its fraction carries ~2^-45 absolute error, and the mantissa is floored):
  // e.g. n = 3, p = 0 gives 2^160/3 - 1.7e30; n = 588225845 is off by 1.35e-15. Allow 2^-40.
  const lowBound = (n: number) => RING / BigInt(n) - (RING / BigInt(n) >> 40n);
  fc.assert(fc.property(
    fc.integer({ min: 2, max: 1 << 30 }),
    fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    (n, p, q) => {
      const d = shortcutDistance(n, p);
      if (d < lowBound(n) || d > RING) throw new Error(`n=${n} p=${p}: ${d} outside [2^160/n, 2^160]`);
      const [lo, hi] = p <= q ? [p, q] : [q, p];
      if (shortcutDistance(n, lo) > shortcutDistance(n, hi)) throw new Error(`not monotonic at n=${n} ${lo} ${hi}`);
    }), { numRuns: 5000 });
  // Monotonic along a fine sweep too, for several sizes.
  for (const n of [11, 24, 100, 1000, 123457, 2 ** 20]) {
    let prev = -1n, ok = true;
    for (let i = 0; i <= 10_000; i++) {
      const d = shortcutDistance(n, i / 10_001);
      if (d < prev) ok = false;
      prev = d;
    }
    t.ok(ok, `monotonic in p for n=${n}`);
    const d0 = shortcutDistance(n, 0);
    const rel = Number((d0 - RING / BigInt(n)) * 10n ** 12n / (RING / BigInt(n))) / 1e12;
    t.ok(Math.abs(rel) < 1e-12, `p = 0 gives 2^160/n for n=${n} (relative error ${rel})`);
    t.ok(shortcutDistance(n, 0.999999) <= RING && shortcutDistance(n, 0.999999) > RING - RING / 100n, `p → 1 approaches 2^160 for n=${n}`);
  }
  // Log-uniform: the midpoint p = 0.5 gives 2^160/sqrt(n).
  const mid = Number(shortcutDistance(1 << 20, 0.5) >> 100n) / 2 ** 60;
  t.ok(Math.abs(mid - 1 / 1024) < 1e-12, `p = 0.5, n = 2^20 gives 2^150 (${mid * 1024} · 2^150)`);
  t.equal(shortcutDistance(1024, 0), 1n << 150n, 'exact for powers of two');
  t.end();
});

t.test('desiredShortcuts', (t) => {
  for (const n of [0, 1, 2, 5, 10]) t.equal(desiredShortcuts(n), 0, `none for n = ${n}`);
  t.equal(desiredShortcuts(11), 2, 'n = 11: ceil(0.5 · 3.46) = 2');
  t.equal(desiredShortcuts(16), 2);
  t.equal(desiredShortcuts(17), 3);
  t.equal(desiredShortcuts(64), 3);
  t.equal(desiredShortcuts(65), 4);
  t.equal(desiredShortcuts(1024), 5);
  t.equal(desiredShortcuts(1025), 6);
  t.equal(desiredShortcuts(1_000_000), 10);
  t.equal(desiredShortcuts(1024, 1), 10, 'factor scales it');
  fc.assert(fc.property(fc.integer({ min: 11, max: 2 ** 40 }), (n) => desiredShortcuts(n) === Math.ceil(0.5 * Math.log2(n))));
  fc.assert(fc.property(fc.integer({ min: -5, max: 10 }), (n) => desiredShortcuts(n) === 0));
  fc.assert(fc.property(fc.integer({ min: 11, max: 2 ** 30 }), (n) => desiredShortcuts(n) <= desiredShortcuts(n + 1)));
  t.end();
});

t.test('estimateSize on evenly spaced rings', (t) => {
  /** Self at `offset`, plus k evenly spaced ring neighbours per side of a ring of N nodes. */
  const build = (N: number, offset: bigint, perSide: number, leaves = 0) => {
    const step = RING / BigInt(N);
    const at = (i: number) => Address.fromBigInt((offset + BigInt(i) * step) % RING);
    const table = new ConnectionTable(at(0), () => 0);
    const idx = new Set<number>();
    for (let i = 1; i <= perSide; i++) { idx.add(i % N); idx.add((((N - i) % N) + N) % N); }
    idx.delete(0);
    for (const i of idx) table.add(conn(at(i)));
    for (let j = 0; j < leaves; j++) table.add(conn(Address.fromBigInt((offset + step / 2n + BigInt(j)) % RING), 'leaf'));
    return table;
  };
  fc.assert(fc.property(
    fc.integer({ min: 3, max: 10_000_000 }),
    fc.bigInt({ min: 0n, max: MAX }),
    fc.integer({ min: 2, max: 6 }),
    (N, offset, perSide) => {
      const est = estimateSize(build(N, offset, perSide));
      if (Math.abs(est - N) > Math.max(1, N * 1e-9)) throw new Error(`N=${N}: estimate ${est}`);
    }), { numRuns: 1000 });
  for (const N of [3, 4, 5, 24, 100, 1000, 65536]) {
    const e2 = estimateSize(build(N, 12345n, 2)), e3 = estimateSize(build(N, MAX - 3n, 3));
    t.ok(Math.abs(e2 - N) <= 1, `N = ${N}, two neighbours per side: ${e2}`);
    t.ok(Math.abs(e3 - N) <= 1, `N = ${N}, three neighbours per side, wrapping: ${e3}`);
  }
  t.ok(Math.abs(estimateSize(build(1000, 0n, 2, 5)) - 1000) <= 1, 'leaf connections are ignored');
  t.equal(estimateSize(build(1000, 0n, 2, 5)), estimateSize(build(1000, 0n, 2, 0)), 'leaf connections change nothing');
  t.equal(estimateSize(new ConnectionTable(Address.fromBigInt(1n), () => 0)), 1, 'empty table: just us');
  // Never below the number of structured connections plus ourselves.
  const crowded = build(4, 0n, 2);
  for (let i = 0; i < 6; i++) crowded.add(conn(RING / 2n + BigInt(i) * 2n));
  t.ok(estimateSize(crowded) >= crowded.structured.length + 1, 'at least s + 1');
  t.end();
});

// estimateSize takes the 2nd-nearest connection per side from neighborsOf(self, 2); with only
// one structured connection per side that "2nd" is the other side's neighbour, wrapped around
// the ring, so the arc counts almost the whole ring twice: N = 1000 is estimated as 3 (s + 1).
t.test('estimateSize with one neighbour per side', (t) => {
  const step = RING / 1000n;
  const table = new ConnectionTable(Address.fromBigInt(0n), () => 0);
  table.add(conn(step));
  table.add(conn(RING - step));
  t.equal(estimateSize(table), 1000, 'the two immediate neighbours of a 1000-node ring');
  t.end();
});

// estimateSize computes Number((RING * 2k) / arc) with BigInt division, which already floors,
// so the Math.round after it never rounds: a ring of 24 evenly spaced nodes (spacing
// floor(2^160/24)) has arc = 4·spacing + (2^160 mod 24) and is estimated as 23.
t.test('estimateSize rounds to the nearest integer', (t) => {
  const step = RING / 24n;
  const table = new ConnectionTable(Address.fromBigInt(0n), () => 0);
  for (const i of [1n, 2n, 22n, 23n]) table.add(conn(i * step));
  t.equal(estimateSize(table), 24);
  t.end();
});

t.test('all() lists connections oldest first, a replaced one as the newest', (t) => {
  const table = new ConnectionTable(Address.fromBigInt(0n), () => 0);
  const addrs = [1n, 2n, 3n].map((v) => Address.fromBigInt(v << 100n));
  for (const [i, a] of addrs.entries()) table.add(conn(a, i % 2 ? 'leaf' : 'structured.near', i));
  table.add(conn(addrs[0]!, 'structured.near', 3));
  t.same([...table.all()].map((c) => c.createdAt), [1, 2, 3], 'the tunnel listener takes the first ones as the oldest');
  t.end();
});
