// Per-node DHT storage (Brunet's TableServer data), kept in a level database so a
// restarted node keeps its unexpired entries.
//
// Level key:   hex(ring key) ':' hex(SHA-1(value)). Lower-case hex sorts bytewise in
//              ring order, so ring arcs are plain ordered iterator ranges.
// Level value: v1: end (float64 BE) | created (float64 BE) | value bytes
//              v2: 0x02 | end | created | origin length (u16 BE) | origin | value bytes
//              The origin is the client's key the ring point was derived from, so a holder
//              can find the key's other replica points and restore them (re-replication).
//              v1 records (no origin) start with a float64 byte ≥ 0x40, never 0x02.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import type { Clock } from '../util/clock.js';

export interface StoredEntry {
  key: Uint8Array; // 20-byte ring key
  value: Uint8Array;
  /** The client's key behind the ring point, when the writer gave it. */
  origin?: Uint8Array;
  created: number; // ms epoch
  end: number; // ms epoch expiry
}
export type PutOutcome = 'stored' | 'extended' | 'exists';
export class StoreError extends Error {
  override name = 'StoreError';
}
export interface StoreOptions {
  clock: Clock;
  maxValuesPerKey?: number; // default 4096
}

const KEY_BYTES = 20;
const HEADER = 16;
const DEFAULT_PAGE_BYTES = 1024; // Brunet's TableServer MAX_BYTES
// ':' separates key from hash; ';' is the next ASCII char, so "<hex>;" bounds every "<hex>:*".
const AFTER = ';';

type Db = Level<string, Uint8Array>;
type Op = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };
interface Rec { lk: string; end: number; created: number; value: Uint8Array; origin?: Uint8Array }
const V2 = 0x02;
/** Ring keys whose records are kept decoded in memory (the oldest read is forgotten first). */
const CACHED_KEYS = 4096;

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const sha1hex = (v: Uint8Array): string => createHash('sha1').update(v).digest('hex');

function encode(end: number, created: number, value: Uint8Array, origin?: Uint8Array): Uint8Array {
  const o = origin ?? new Uint8Array(0);
  const out = new Uint8Array(1 + HEADER + 2 + o.length + value.length);
  const dv = new DataView(out.buffer);
  out[0] = V2;
  dv.setFloat64(1, end);
  dv.setFloat64(9, created);
  dv.setUint16(1 + HEADER, o.length);
  out.set(o, 3 + HEADER);
  out.set(value, 3 + HEADER + o.length);
  return out;
}

function decode(lk: string, raw: Uint8Array): Rec {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  // Copy so callers never alias level's internal buffers.
  if (raw.length >= 1 + HEADER + 2 && raw[0] === V2) {
    const n = dv.getUint16(1 + HEADER);
    if (3 + HEADER + n > raw.length) throw new StoreError(`dht store: corrupt record under ${lk}`);
    const origin = n > 0 ? raw.slice(3 + HEADER, 3 + HEADER + n) : undefined;
    return { lk, end: dv.getFloat64(1), created: dv.getFloat64(9), value: raw.slice(3 + HEADER + n), origin };
  }
  if (raw.length < HEADER) throw new StoreError(`dht store: corrupt record under ${lk}`);
  return { lk, end: dv.getFloat64(0), created: dv.getFloat64(8), value: raw.slice(HEADER) };
}

function checkKey(key: unknown): string {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new StoreError(`dht store: key must be ${KEY_BYTES} bytes`);
  }
  return hex(key);
}

function checkValue(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new StoreError('dht store: value must be a Uint8Array');
  return value;
}

async function wrap<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError(`dht store: ${what} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

export class TableStore {
  private readonly clock: Clock;
  private readonly maxValues: number;
  // Tail of each ring key's operation chain; read-modify-write of one key must not interleave.
  private readonly chains = new Map<string, Promise<unknown>>();
  // Every record under a ring key, decoded and in level order, for the keys read or written
  // lately: a Get answers from here instead of opening a level iterator. Only the key's locked
  // operations change a key's records, and each applies its own writes here once level took them.
  private readonly cache = new Map<string, Rec[]>();

  private constructor(private readonly db: Db, private readonly dir: string | undefined, o: StoreOptions) {
    this.clock = o.clock;
    this.maxValues = o.maxValuesPerKey ?? 4096;
    if (!Number.isInteger(this.maxValues) || this.maxValues < 1) {
      throw new StoreError('dht store: maxValuesPerKey must be a positive integer');
    }
  }

  static memory(o: StoreOptions): TableStore {
    const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' });
    return new TableStore(db as unknown as Db, undefined, o);
  }

  static disk(dir: string, o: StoreOptions): TableStore {
    return new TableStore(new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' }), dir, o);
  }

  open(): Promise<void> {
    return wrap('open', async () => {
      if (this.dir !== undefined) await mkdir(this.dir, { recursive: true });
      await this.db.open();
    });
  }

  close(): Promise<void> {
    return wrap('close', async () => {
      // Let queued writes land first, or a restart would lose acknowledged puts.
      while (this.chains.size > 0) await Promise.allSettled([...this.chains.values()]);
      await this.db.close();
      this.cache.clear();
    });
  }

  async put(key: Uint8Array, value: Uint8Array, ttlSec: number, create: boolean, origin?: Uint8Array): Promise<PutOutcome> {
    const kh = checkKey(key);
    checkValue(value);
    if (typeof ttlSec !== 'number' || !Number.isFinite(ttlSec) || ttlSec <= 0) {
      throw new StoreError('dht store: ttl must be a positive number of seconds');
    }
    return this.locked(kh, 'put', async () => {
      const now = this.clock.now();
      const end = now + ttlSec * 1000;
      const lk = `${kh}:${sha1hex(value)}`;
      const { live, expired } = await this.scan(kh, now);
      const ops: Op[] = expired.map((k) => ({ type: 'del', key: k }));
      const same = live.find((r) => r.lk === lk);
      let outcome: PutOutcome;
      if (same) {
        // Identical value: never shortens, and counts as success even for Create (Brunet).
        const o = same.origin ?? origin;
        if (end > same.end || o !== same.origin) ops.push({ type: 'put', key: lk, value: encode(Math.max(end, same.end), same.created, same.value, o) });
        outcome = 'extended';
      } else if (create && live.length > 0) {
        outcome = 'exists';
      } else if (live.length >= this.maxValues) {
        throw new StoreError(`dht store: key ${kh} already holds ${this.maxValues} values`);
      } else {
        ops.push({ type: 'put', key: lk, value: encode(end, now, value, origin) });
        outcome = 'stored';
      }
      if (ops.length > 0) await this.write(kh, ops);
      return outcome;
    });
  }

  async get(key: Uint8Array, offset = 0, maxBytes = DEFAULT_PAGE_BYTES): Promise<{ entries: StoredEntry[]; total: number; next?: number }> {
    const kh = checkKey(key);
    if (!Number.isInteger(offset) || offset < 0) throw new StoreError('dht store: offset must be a non-negative integer');
    if (typeof maxBytes !== 'number' || !(maxBytes > 0)) throw new StoreError('dht store: maxBytes must be positive');
    return this.locked(kh, 'get', async () => {
      const { live, expired } = await this.scan(kh, this.clock.now());
      if (expired.length > 0) await this.write(kh, expired.map((k) => ({ type: 'del' as const, key: k })));
      // Stable sort on top of level order keeps equal-age entries in a fixed order across pages.
      live.sort((a, b) => a.created - b.created);
      const entries: StoredEntry[] = [];
      let bytes = 0;
      let i = offset;
      for (; i < live.length; i++) {
        const r = live[i];
        if (entries.length > 0 && bytes + r.value.length > maxBytes) break;
        bytes += r.value.length;
        entries.push({ key: unhex(kh), value: r.value.slice(), created: r.created, end: r.end, ...(r.origin ? { origin: r.origin.slice() } : {}) });
      }
      return i < live.length ? { entries, total: live.length, next: i } : { entries, total: live.length };
    });
  }

  // An async generator, so bad bounds surface as a rejection on first next(), like the other methods.
  async *range(from: Uint8Array, to: Uint8Array): AsyncGenerator<StoredEntry> {
    const fh = checkKey(from);
    const th = checkKey(to);
    // (from, to] clockwise; a wrapping arc (or the full ring) is (from, max] then [0, to].
    yield* this.iterate(fh < th ? [{ gt: fh + AFTER, lt: th + AFTER }] : [{ gt: fh + AFTER }, { lt: th + AFTER }]);
  }

  all(): AsyncIterable<StoredEntry> {
    return this.iterate([{}]);
  }

  async remove(key: Uint8Array, value: Uint8Array): Promise<boolean> {
    const kh = checkKey(key);
    const lk = `${kh}:${sha1hex(checkValue(value))}`;
    return this.locked(kh, 'remove', async () => {
      const raw = await this.db.get(lk);
      if (raw === undefined) return false;
      await this.write(kh, [{ type: 'del', key: lk }]);
      return decode(lk, raw).end > this.clock.now();
    });
  }

  sweep(): Promise<number> {
    return wrap('sweep', async () => {
      const now = this.clock.now();
      const stale: string[] = [];
      for await (const [lk, raw] of this.db.iterator()) if (decode(lk, raw).end <= now) stale.push(lk);
      let n = 0;
      // Re-check under the key's lock: a concurrent put may have revived the entry since the scan.
      await Promise.all(stale.map((lk) => this.locked(lk.slice(0, 2 * KEY_BYTES), 'sweep', async () => {
        const raw = await this.db.get(lk);
        if (raw !== undefined && decode(lk, raw).end <= this.clock.now()) {
          await this.write(lk.slice(0, 2 * KEY_BYTES), [{ type: 'del', key: lk }]);
          n++;
        }
      })));
      return n;
    });
  }

  count(): Promise<number> {
    return wrap('count', async () => {
      const now = this.clock.now();
      let n = 0;
      for await (const [lk, raw] of this.db.iterator()) if (decode(lk, raw).end > now) n++;
      return n;
    });
  }

  /** Under kh's lock: the live and expired records under the ring key (records are shared: never mutate them). */
  private async scan(kh: string, now: number): Promise<{ live: Rec[]; expired: string[] }> {
    let all = this.cache.get(kh);
    if (all === undefined) {
      all = [];
      for await (const [lk, raw] of this.db.iterator({ gt: kh + ':', lt: kh + AFTER })) all.push(decode(lk, raw));
      this.cache.set(kh, all);
      if (this.cache.size > CACHED_KEYS) this.cache.delete(this.cache.keys().next().value!);
    }
    const live: Rec[] = [];
    const expired: string[] = [];
    for (const r of all) {
      if (r.end > now) live.push(r);
      else expired.push(r.lk);
    }
    return { live, expired };
  }

  /** Under kh's lock: writes ops (all under kh) to level, then to the cached records if kh's are cached. */
  private async write(kh: string, ops: Op[]): Promise<void> {
    await this.db.batch(ops);
    const all = this.cache.get(kh);
    if (all === undefined) return;
    for (const op of ops) {
      let i = 0;
      while (i < all.length && all[i]!.lk < op.key) i++;
      const here = i < all.length && all[i]!.lk === op.key;
      if (op.type === 'del') { if (here) all.splice(i, 1); }
      else all.splice(i, here ? 1 : 0, decode(op.key, op.value));
    }
  }

  // Expired entries are skipped, not deleted: deleting outside the key's lock could race a put.
  private async *iterate(spans: { gt?: string; lt?: string }[]): AsyncGenerator<StoredEntry> {
    const now = this.clock.now();
    for (const span of spans) {
      const it = this.db.iterator(span);
      try {
        while (true) {
          let item: [string, Uint8Array] | undefined;
          try {
            item = await it.next();
          } catch (e) {
            throw new StoreError(`dht store: iteration failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
          }
          if (item === undefined) break;
          const r = decode(item[0], item[1]);
          if (r.end > now) yield { key: unhex(item[0].slice(0, 2 * KEY_BYTES)), value: r.value, created: r.created, end: r.end, ...(r.origin ? { origin: r.origin } : {}) };
        }
      } finally {
        await it.close().catch(() => undefined);
      }
    }
  }

  private locked<T>(kh: string, what: string, f: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(kh) ?? Promise.resolve();
    const run = prev.then(() => wrap(what, f));
    const tail = run.catch(() => undefined);
    this.chains.set(kh, tail);
    // Drop the entry once idle so the map does not grow with every key ever touched.
    void tail.then(() => { if (this.chains.get(kh) === tail) this.chains.delete(kh); });
    return run;
  }
}
