import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreError, TableStore, type StoredEntry } from '../src/dht/store.js';
import type { Clock } from '../src/util/clock.js';

class FakeClock implements Clock {
  constructor(public t = 1_700_000_000_000) {}
  now(): number { return this.t; }
  advance(ms: number): void { this.t += ms; }
  setTimeout(): { cancel(): void } { return { cancel() {} }; }
  setInterval(): { cancel(): void } { return { cancel() {} }; }
}

const MAX = (1n << 160n) - 1n;
const keyOf = (n: bigint): Uint8Array => {
  const b = new Uint8Array(20);
  for (let i = 19; i >= 0; i--, n >>= 8n) b[i] = Number(n & 0xffn);
  return b;
};
const toBig = (b: Uint8Array): bigint => b.reduce((a, x) => (a << 8n) | BigInt(x), 0n);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const K = keyOf(0x1234n);

async function collect(it: AsyncIterable<StoredEntry>): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

async function memStore(t: Test, clock: Clock, maxValuesPerKey?: number): Promise<TableStore> {
  const s = TableStore.memory({ clock, maxValuesPerKey });
  await s.open();
  t.teardown(() => s.close());
  return s;
}

t.test('put appends; identical value only extends, never shortens', async (t) => {
  const c = new FakeClock();
  const s = await memStore(t, c);
  t.equal(await s.put(K, enc('a'), 10, false), 'stored');
  const t0 = c.now();
  c.advance(1);
  t.equal(await s.put(K, enc('b'), 10, false), 'stored');
  t.equal(await s.put(K, enc('a'), 100, false), 'extended');
  t.equal(await s.put(K, enc('a'), 5, false), 'extended', 'shorter ttl is still success');
  const r = await s.get(K);
  t.equal(r.total, 2);
  t.same(r.entries.map((e) => dec(e.value)), ['a', 'b'], 'oldest first');
  t.equal(r.entries[0].end, c.now() + 100_000, 'later end kept');
  t.equal(r.entries[0].created, t0, 'extension keeps the creation time');
  t.same(r.entries[0].key, K);
  t.equal(r.next, undefined);
});

t.test('create: identical extends, different live value blocks until it expires', async (t) => {
  const c = new FakeClock();
  const s = await memStore(t, c);
  t.equal(await s.put(K, enc('v1'), 10, true), 'stored');
  t.equal(await s.put(K, enc('v1'), 20, true), 'extended');
  t.equal(await s.put(K, enc('v1'), 1, true), 'extended');
  t.equal((await s.get(K)).entries[0].end, c.now() + 20_000, 'later end kept');
  t.equal(await s.put(K, enc('v2'), 10, true), 'exists');
  t.same((await s.get(K)).entries.map((e) => dec(e.value)), ['v1'], 'nothing stored');
  c.advance(20_000);
  t.equal(await s.put(K, enc('v2'), 10, true), 'stored');
  t.same((await s.get(K)).entries.map((e) => dec(e.value)), ['v2']);
  c.advance(10_000);
  t.equal(await s.put(K, enc('v2'), 10, true), 'stored', 'an expired identical value is stored afresh');
});

t.test('expiry and bad input', async (t) => {
  const c = new FakeClock();
  const s = await memStore(t, c);
  await s.put(K, enc('x'), 10, false);
  c.advance(9_999);
  t.equal((await s.get(K)).total, 1);
  c.advance(1);
  t.same(await s.get(K), { entries: [], total: 0 }, 'expired at end');
  t.equal(await s.sweep(), 0, 'get already deleted it');
  for (const ttl of [0, -1, NaN, Infinity]) {
    await t.rejects(s.put(K, enc('x'), ttl, false), StoreError, `ttl ${ttl}`);
  }
  await t.rejects(s.put(new Uint8Array(19), enc('x'), 1, false), StoreError);
  await t.rejects(s.get(new Uint8Array(21)), StoreError);
  await t.rejects(s.get(K, -1), StoreError);
  await t.rejects(s.get(K, 0, 0), StoreError);
  await t.rejects(collect(s.range(new Uint8Array(3), K)), StoreError);
  await t.rejects(s.remove(K, 'x' as unknown as Uint8Array), StoreError);
});

t.test('paging chains and covers every value once', async (t) => {
  const c = new FakeClock();
  const s = await memStore(t, c);
  const values: string[] = [];
  for (let i = 0; i < 100; i++) {
    const v = String(i).padStart(3, '0').repeat(34).slice(0, 100);
    values.push(v);
    // Every other pair shares a timestamp, so ties must also page stably.
    if (i % 2 === 0) c.advance(1);
    await s.put(K, enc(v), 3600, false);
  }
  const seen: string[] = [];
  let offset: number | undefined = 0;
  let pages = 0;
  while (offset !== undefined) {
    const r: Awaited<ReturnType<TableStore['get']>> = await s.get(K, offset, 1024);
    t.equal(r.total, 100);
    t.ok(r.entries.length >= 1 && r.entries.length <= 10, 'at most 1024 bytes per page');
    seen.push(...r.entries.map((e) => dec(e.value)));
    offset = r.next;
    pages++;
  }
  t.equal(pages, 10);
  t.equal(new Set(seen).size, 100);
  t.same(seen.map((v) => v.slice(0, 3)).sort(), values.map((v) => v.slice(0, 3)).sort());
  const tiny = await s.get(K, 99, 10);
  t.equal(tiny.entries.length, 1, 'at least one entry even if it exceeds maxBytes');
  t.equal(tiny.next, undefined);
  t.same(await s.get(K, 500), { entries: [], total: 100 });
});

t.test('range over normal, wrapping and full arcs', async (t) => {
  const c = new FakeClock();
  const s = await memStore(t, c);
  const pts = [0n, 0x10n, 0x20n, 0x30n, 1n << 159n, MAX];
  for (const p of pts) await s.put(keyOf(p), enc(`p${p}`), 100, false);
  await s.put(keyOf(0x20n), enc('second'), 100, false);
  await s.put(keyOf(0x25n), enc('short'), 1, false);
  c.advance(1_000);
  const keys = async (a: bigint, b: bigint) => (await collect(s.range(keyOf(a), keyOf(b)))).map((e) => toBig(e.key));
  t.same(await keys(0x10n, 0x30n), [0x20n, 0x20n, 0x30n], '(from, to], expired skipped');
  t.same(await keys(0x11n, 0x2fn), [0x20n, 0x20n]);
  t.same(await keys(0x30n, 0x10n), [1n << 159n, MAX, 0n, 0x10n], 'wraps clockwise');
  t.same(await keys(MAX, 0n), [0n]);
  t.same(await keys(0x20n, 0x20n), [0x30n, 1n << 159n, MAX, 0n, 0x10n, 0x20n, 0x20n], 'from == to is the whole ring');
  t.equal((await collect(s.all())).length, 7);
  // Breaking out early must release the iterator cleanly.
  for await (const _ of s.range(keyOf(0n), keyOf(0n))) break;
  t.equal(await s.count(), 7);
});

t.test('entries survive close/reopen on disk', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'dht-store-')), 'nested', 'db');
  t.teardown(() => rmSync(join(dir, '..', '..'), { recursive: true, force: true }));
  const c = new FakeClock();
  const a = TableStore.disk(dir, { clock: c });
  await a.open();
  await a.put(K, enc('keep'), 100, false);
  await a.put(K, enc('gone'), 1, false);
  await a.put(keyOf(7n), enc('other'), 100, false);
  await a.close();
  c.advance(2_000);
  const b = TableStore.disk(dir, { clock: c });
  await b.open();
  const r = await b.get(K);
  t.same(r.entries.map((e) => dec(e.value)), ['keep']);
  t.equal(r.entries[0].end, c.now() - 2_000 + 100_000);
  t.equal(await b.count(), 2);
  await b.close();
  await t.rejects(b.get(K), StoreError, 'closed store rejects with StoreError');
});

t.test('concurrent creates on one key: exactly one wins', async (t) => {
  const s = await memStore(t, new FakeClock());
  const out = await Promise.all(Array.from({ length: 50 }, (_, i) => s.put(K, enc(`v${i}`), 60, true)));
  t.equal(out.filter((o) => o === 'stored').length, 1);
  t.equal(out.filter((o) => o === 'exists').length, 49);
  t.equal((await s.get(K)).total, 1);
  const puts = await Promise.all(Array.from({ length: 50 }, (_, i) => s.put(K, enc(`w${i}`), 60, false)));
  t.ok(puts.every((o) => o === 'stored'));
  t.equal((await s.get(K)).total, 51, 'no lost appends');
});

t.test('maxValuesPerKey', async (t) => {
  const c = new FakeClock();
  const s = await memStore(t, c, 3);
  for (let i = 0; i < 3; i++) await s.put(K, enc(`v${i}`), 10 + i, false);
  await t.rejects(s.put(K, enc('v3'), 10, false), StoreError);
  t.equal(await s.put(K, enc('v0'), 10, false), 'extended', 'refreshing an existing value is still allowed');
  t.equal(await s.put(keyOf(1n), enc('v3'), 10, false), 'stored', 'limit is per key');
  c.advance(11_000);
  t.equal(await s.put(K, enc('v3'), 10, false), 'stored', 'expired values free room');
  t.throws(() => TableStore.memory({ clock: c, maxValuesPerKey: 0 }), StoreError);
});

t.test('memory stores are independent', async (t) => {
  const c = new FakeClock();
  const a = await memStore(t, c);
  const b = await memStore(t, c);
  await a.put(K, enc('a'), 10, false);
  t.equal((await b.get(K)).total, 0);
  t.equal(await b.put(K, enc('b'), 10, true), 'stored');
  t.same((await a.get(K)).entries.map((e) => dec(e.value)), ['a']);
});

t.test('sweep, count and remove', async (t) => {
  const c = new FakeClock();
  const s = await memStore(t, c);
  for (let i = 0; i < 5; i++) await s.put(keyOf(BigInt(i)), enc(`s${i}`), 10, false);
  for (let i = 0; i < 3; i++) await s.put(keyOf(BigInt(i)), enc(`l${i}`), 100, false);
  t.equal(await s.count(), 8);
  c.advance(20_000);
  t.equal(await s.count(), 3);
  t.equal(await s.sweep(), 5);
  t.equal(await s.sweep(), 0);
  t.equal(await s.remove(keyOf(0n), enc('l0')), true);
  t.equal(await s.remove(keyOf(0n), enc('l0')), false);
  t.equal(await s.remove(keyOf(1n), enc('nope')), false);
  t.equal(await s.count(), 2);
});

t.test("the client's key behind a ring point is kept and learnt later", async (t) => {
  const clock = new FakeClock();
  const s = await memStore(t, clock);
  await s.put(K, enc('a'), 100, false, enc('original key'));
  await s.put(K, enc('b'), 100, false);
  const got = (await s.get(K)).entries;
  t.equal(dec(got.find((e) => dec(e.value) === 'a')!.origin!), 'original key');
  t.notOk(got.find((e) => dec(e.value) === 'b')!.origin, 'no origin given, none stored');
  await s.put(K, enc('b'), 50, false, enc('learnt'));
  const b = (await collect(s.all())).find((e) => dec(e.value) === 'b')!;
  t.equal(dec(b.origin!), 'learnt', 'a later write supplies it');
  t.equal(b.end, clock.now() + 100_000, 'and does not shorten the TTL');
});
