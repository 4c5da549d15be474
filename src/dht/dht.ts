// The DHT client (Brunet's Dht): a Put goes to all replica points at once and succeeds when a
// majority agrees. A Get first reads a majority of the points at one holder each and ends there
// when they all agree; otherwise it asks both holders of every point, returns the values a
// majority holds and re-puts them (and any genuine signed claim, however few hold it) to the
// points that missed them.
import { Address } from '../address/address.js';
import { Mode } from '../routing/ah-wire.js';
import type { RpcManager } from '../rpc/rpc-manager.js';
import { asBytes, asInt, asList, asMap, type Value } from '../wire/value.js';
import { checkRequest, DhtError, type DhtLimits } from './limits.js';
import { majority, replicaPoints } from './placement.js';
import { realClock, type Clock } from '../util/clock.js';
import { CLAIM_PREFIXES, isClaimKey, makeClaim, openClaim, type Claim, type Signer } from './claims.js';

const REPLICA_TIMEOUT_MS = 5000;
const MAX_PAGES = 64;

export interface DhtValue { value: Uint8Array; ttl: number; age: number; /** Set for signed claims. */ claimer?: Address }

/** What the DHT client needs from its node: RPC calls to the replica points (and a clock for latencies). */
export interface DhtComponents {
  rpc: Pick<RpcManager, 'call' | 'invoke'>;
  clock?: Pick<Clock, 'now'>;
  /** This node's address: a Get asks the replica points nearest to it first. */
  address?: Address;
}

export type DhtOp = 'put' | 'get';

interface Seen { value: Uint8Array; ttl: number[]; age: number[]; holders: Set<number> }

export class Dht {
  /** majorityReads: gets answered by the first read (a majority of points, one holder each, all agreeing). */
  readonly stats = { puts: 0, gets: 0, repairs: 0, majorityReads: 0 };
  /** Told when a put, create or get settles (the metrics' latency histogram): once per operation, not per packet. */
  onDone?: (op: DhtOp, ms: number, ok: boolean) => void;
  /** Signs claims (keys such as `dhcp:…`); without it such keys cannot be written. */
  constructor(private readonly node: DhtComponents, readonly limits: DhtLimits, private readonly signer?: Signer) {}

  async put(key: Uint8Array, value: Uint8Array, ttl: number): Promise<void> { return this.timed('put', () => this.write(key, value, ttl, false)); }
  /** Create-if-absent: succeeds if the identical value is there (its TTL is extended). */
  async create(key: Uint8Array, value: Uint8Array, ttl: number): Promise<void> { return this.timed('put', () => this.write(key, value, ttl, true)); }

  /** Every live value a majority of replicas holds, with average TTL and age in seconds. */
  async get(key: Uint8Array): Promise<DhtValue[]> { return this.timed('get', () => this.read(key)); }

  private async timed<T>(op: DhtOp, f: () => Promise<T>): Promise<T> {
    const done = this.onDone;
    if (!done) return f();
    const clock = this.node.clock ?? realClock, t0 = clock.now();
    try {
      const r = await f();
      done(op, clock.now() - t0, true);
      return r;
    } catch (e) { done(op, clock.now() - t0, false); throw e; }
  }

  private write(key: Uint8Array, raw: Uint8Array, ttl: number, create: boolean): Promise<void> {
    checkRequest(key, raw, ttl, this.limits);
    let value = raw;
    if (isClaimKey(key)) {
      if (!this.signer) throw new DhtError(`keys starting with ${CLAIM_PREFIXES.map((x) => `"${x}"`).join(' or ')} are signed and need the node key (Security enabled)`);
      value = makeClaim(this.signer, key, raw);
      if (value.length > this.limits.maxValueBytes) throw new DhtError(`the signed claim is ${value.length} bytes; the limit is ${this.limits.maxValueBytes}`);
    }
    this.stats.puts++;
    const points = replicaPoints(key, this.limits.degree);
    const total = points.length, need = majority(total);
    const ttlCapped = Math.min(ttl, this.limits.maxTtl);
    return new Promise((resolve, reject) => {
      let pos = 0, neg = 0, exists = 0, done = false;
      const settle = () => {
        if (done) return;
        if (pos >= need) { done = true; resolve(); }
        else if (neg > total - need) {
          done = true;
          const counts = { total, positive: pos, negative: neg };
          reject(exists > 0 ? new DhtError('already exists: the key holds a different value', counts) : new DhtError('no majority of replicas stored the value', counts));
        }
      };
      for (const p of points) {
        this.node.rpc.call({ address: p, mode: Mode.Greedy }, 'dht.Put', [p.bytes, value, ttlCapped, create, key], { timeoutMs: REPLICA_TIMEOUT_MS })
          .then((r) => {
            const m = asMap(r, 'put reply');
            if (m.ok === true) pos++; else { neg++; if (m.reason === 'exists') exists++; }
          }, () => { neg++; })
          .finally(settle);
      }
    });
  }

  private async read(key: Uint8Array): Promise<DhtValue[]> {
    checkRequest(key, undefined, undefined, this.limits);
    this.stats.gets++;
    const points = replicaPoints(key, this.limits.degree);
    const need = majority(points.length);
    const order = this.nearestFirst(points);
    if (!isClaimKey(key)) {
      // First a majority of the points, the nearest to us (shorter routes), each at the node a
      // greedy route reaches: where a Put stored it. If all of them answer with the same values
      // (at least one), each of those values is on a majority and the read ends there. Anything
      // else (a point silent or different, nothing found) falls through to the full read.
      const quick = new Map<string, Seen>();
      const first = order.slice(0, need);
      const ok = await Promise.all(first.map((i) => this.readPoint(points[i]!, i, quick, Mode.Greedy)));
      if (ok.every(Boolean) && quick.size > 0 && [...quick.values()].every((s) => s.holders.size === need)) {
        this.stats.majorityReads++;
        return this.collect(key, points, quick, new Set(first), need);
      }
    }
    // The full read: both holders of every point. Claims always take it, so a genuine claim on
    // a minority of points is seen and restored.
    const seen = new Map<string, Seen>();
    const answered = await Promise.all(order.map((i) => this.readPoint(points[i]!, i, seen, Mode.Closest)));
    const n = answered.filter(Boolean).length;
    if (n < need) throw new DhtError('not enough replicas answered', { total: points.length, positive: n, negative: points.length - n });
    return this.collect(key, points, seen, new Set(order), need);
  }

  /** The values held by a majority (genuine claims only, for claim keys); holes among `asked` filled. */
  private collect(key: Uint8Array, points: Address[], seen: Map<string, Seen>, asked: Set<number>, need: number): DhtValue[] {
    const out: DhtValue[] = [];
    const claimKey = isClaimKey(key);
    for (const s of seen.values()) {
      const avg = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
      const v: DhtValue = { value: s.value, ttl: avg(s.ttl), age: avg(s.age) };
      // Only genuine claims for this very key count; anything else stored there is ignored.
      const c = claimKey ? this.claimOf(key, s.value) : undefined;
      if (claimKey && !c) continue;
      // Fill holes: the points asked that missed a majority value get it back. A genuine claim is
      // restored even from a minority: its signature, not the count, vouches for it (and the
      // points still refuse another claimer's claim on an exclusive key), while a minority is
      // what a writer leaves behind when some of its copies landed off the points; it would
      // otherwise stay unreadable until the owner's next refresh, TTL/2 away.
      if ((s.holders.size >= need || c) && s.holders.size < asked.size && v.ttl > 0) this.fillHoles(key, points, asked, s.holders, s.value, v.ttl);
      if (s.holders.size < need) continue;
      out.push(c ? { value: c.payload, ttl: v.ttl, age: v.age, claimer: c.claimer } : v);
    }
    return out.sort((a, b) => b.age - a.age);
  }

  /** Indexes of the points, nearest to this node first (without its address: in point order). */
  private nearestFirst(points: Address[]): number[] {
    const self = this.node.address;
    const idx = points.map((_, i) => i);
    if (!self) return idx;
    const d = points.map((p) => self.absDistanceTo(p));
    return idx.sort((a, b) => (d[a]! < d[b]! ? -1 : d[a]! > d[b]! ? 1 : a - b));
  }

  /** Reads every value point i holds into `seen`; false if the point is missing or unreachable. */
  private async readPoint(p: Address, i: number, seen: Map<string, Seen>, mode: Mode.Closest | Mode.Greedy): Promise<boolean> {
    try {
      // Closest: both nodes bracketing the point answer, since right after a failure the closest
      // live node may not have received its copy yet while the other holder still has it.
      const first = await this.node.rpc.invoke({ address: p, mode }, 'dht.Get', [p.bytes, 0], { timeoutMs: REPLICA_TIMEOUT_MS, maxResults: mode === Mode.Closest ? 2 : 1 });
      if (first.length === 0) throw new DhtError('no reply');
      // Read from whichever holder has more; later pages come from that same node.
      let r = first.map((x) => asMap(x, 'get reply')).reduce((a, b) => (asInt(b.total ?? 0, 'total') > asInt(a.total ?? 0, 'total') ? b : a));
      const holder = Address.fromBytes(asBytes(r.node ?? null, 'node'));
      for (let offset: number | null = 0, pages = 0; offset !== null && pages < MAX_PAGES; pages++) {
        if (offset > 0) r = asMap(await this.node.rpc.call({ address: holder, mode: Mode.Exact }, 'dht.Get', [p.bytes, offset], { timeoutMs: REPLICA_TIMEOUT_MS }), 'get reply');
        for (const v of asList(r.values ?? [], 'values')) {
          const e = asMap(v, 'value');
          const value = asBytes(e.value ?? null, 'value');
          const k = Buffer.from(value).toString('base64');
          const s = seen.get(k) ?? { value, ttl: [], age: [], holders: new Set<number>() };
          if (!s.holders.has(i)) { s.holders.add(i); s.ttl.push(asInt(e.ttl ?? 0, 'ttl')); s.age.push(asInt(e.age ?? 0, 'age')); }
          seen.set(k, s);
        }
        offset = r.next == null ? null : asInt(r.next as Value, 'next');
      }
      return true;
    } catch { return false; /* this replica is missing or unreachable */ }
  }

  private fillHoles(key: Uint8Array, points: Address[], asked: Set<number>, holders: Set<number>, value: Uint8Array, ttl: number): void {
    for (const i of asked) {
      if (holders.has(i)) continue;
      this.stats.repairs++;
      const p = points[i]!;
      this.node.rpc.call({ address: p, mode: Mode.Greedy }, 'dht.Put', [p.bytes, value, ttl, false, key], { timeoutMs: REPLICA_TIMEOUT_MS }).catch(() => {});
    }
  }

  private claimOf(key: Uint8Array, value: Uint8Array): Claim | undefined {
    try {
      const c = openClaim(value);
      return Buffer.from(c.key).equals(Buffer.from(key)) ? c : undefined;
    } catch { return undefined; }
  }
}
