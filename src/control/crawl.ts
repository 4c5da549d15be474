// The ring crawl's core, shared by the crawl tool (over the control API) and the web view
// (in the server, over the node's own RPC): breadth-first over every node's neighbour map
// with many requests in flight, then Brunet's consistency statistics.
import type { Clock } from '../util/clock.js';
import type { Value } from '../wire/value.js';

export interface CrawlStats {
  'Total Nodes': number;
  'Consistent Nodes': number;
  Consistency: number;
  Connections: number;
  SecurityAssociations: number;
  WrappedEdges: number;
  Edges: number;
  RelayEdges: number;
  SubringEdges: number;
  TcpEdges: number;
  UdpEdges: number;
  'Crawl took': number;
}

export type Info = { [k: string]: Value };

/** What a crawl found of one node: its Information.Info and whatever else the fetcher adds. */
export interface Crawled<T> { info: Info; extra: T }

export interface CrawlCoreOptions<T> {
  /** The first node's address. */
  start: string;
  /**
   * Information.Info (and extras) of one node, or undefined when that node is gone (a greedy
   * route that lands elsewhere). `left()` is the time left for this request, in ms.
   */
  fetch: (address: string, left: () => number) => Promise<Crawled<T> | undefined>;
  concurrency?: number;
  clock: Clock;
  /** The clock's time after which no request starts; the crawl returns what it found. */
  deadline: number;
  onProgress?: (found: number, queued: number) => void;
  /**
   * A node's earlier answer, to take instead of asking it again. It is taken only when a node
   * asked in this crawl names it as a near neighbour and that answer names the asker back in
   * the mirrored place (the two still hold each other as ring neighbours); otherwise, once
   * nothing else is left, the node is asked. Never used for the first node.
   */
  reuse?: (address: string) => Crawled<T> | undefined;
}

/** `asked`: how many nodes were asked (the others' earlier answers were taken). */
export interface CrawlCoreResult<T> { nodes: Map<string, Crawled<T>>; complete: boolean; pending: number; asked: number }

const NEIGHBOR_KEYS = ['left', 'left2', 'right', 'right2', 'shortcut'] as const;
/** A near neighbour's place as seen from that neighbour. */
const MIRROR = { left: 'right', right: 'left', left2: 'right2', right2: 'left2' } as const;
const neighborsOf = (c: Crawled<unknown>): Info => (c.info.neighbors ?? {}) as Info;
/** One request's limit. */
export const REQUEST_TIMEOUT_MS = 10_000;

export function crawlFrom<T>(o: CrawlCoreOptions<T>): Promise<CrawlCoreResult<T>> {
  const left = () => Math.max(1, Math.min(REQUEST_TIMEOUT_MS, Math.round(o.deadline - o.clock.now())));
  const concurrency = o.concurrency ?? 64;
  const found = new Map<string, Crawled<T>>();
  const seen = new Set<string>([o.start]);
  const queue = [o.start];
  /** Earlier answers waiting for a vouch; asked when nothing else is left. */
  const deferred = new Map<string, Crawled<T>>();
  const vouched = new Set<string>();
  const mustAsk = new Set<string>([o.start]);
  let active = 0, asked = 0;
  const take = (addr: string, c: Crawled<T>, fresh: boolean) => {
    found.set(addr, c);
    const nb = neighborsOf(c);
    for (const k of NEIGHBOR_KEYS) {
      const a = nb[k];
      if (typeof a === 'string' && !seen.has(a)) { seen.add(a); queue.push(a); }
    }
    if (!fresh || !o.reuse) return;
    for (const [k, back] of Object.entries(MIRROR)) {
      const x = nb[k];
      if (typeof x !== 'string' || vouched.has(x) || found.has(x)) continue;
      const old = deferred.get(x) ?? o.reuse(x);
      if (old && neighborsOf(old)[back] === addr) vouched.add(x);
    }
  };
  return new Promise((done) => {
    let finished = false;
    const finish = (all: boolean) => {
      if (finished) return;
      finished = true;
      timer.cancel();
      done({ nodes: found, complete: all, pending: queue.length + active + deferred.size, asked });
    };
    const timer = o.clock.setTimeout(() => finish(false), Math.max(0, o.deadline - o.clock.now()));
    const pump = () => {
      while (!finished && active < concurrency && queue.length > 0) {
        const addr = queue.shift()!;
        const old = mustAsk.has(addr) ? undefined : o.reuse?.(addr);
        if (old) {
          if (vouched.has(addr)) take(addr, old, false); else deferred.set(addr, old);
          continue;
        }
        active++;
        asked++;
        o.fetch(addr, left).catch(() => undefined).then((c) => {
          if (finished) return;
          if (c) take(addr, c, true);
          o.onProgress?.(found.size, queue.length + active - 1 + deferred.size);
        }).finally(() => { active--; next(); });
      }
    };
    // When the queue runs dry: vouched earlier answers are taken, the rest are asked.
    const next = () => {
      while (!finished) {
        pump();
        if (active > 0 || queue.length > 0) return;
        if (deferred.size === 0) return finish(true);
        for (const [addr, old] of deferred) {
          deferred.delete(addr);
          if (vouched.has(addr)) take(addr, old, false);
          else { mustAsk.add(addr); queue.push(addr); }
        }
      }
    };
    next();
  });
}

/** The self address an Information.Info reply carries. */
export const selfOf = (info: Info | undefined): unknown => (info?.neighbors as Info | undefined)?.self;

export function statistics(infos: Map<string, Info>, seconds: number): CrawlStats {
  const nb = (a: unknown, k: string): unknown => {
    const info = typeof a === 'string' ? infos.get(a) : undefined;
    return (info?.neighbors as Info | undefined)?.[k];
  };
  let rcon = 0, all = 0;
  const sum = (k: string) => { let s = 0; for (const i of infos.values()) s += typeof i[k] === 'number' ? (i[k] as number) : 0; return s; };
  for (const [addr, info] of infos) {
    const n = info.neighbors as Info;
    const r = nb(n.left, 'right') === addr ? 1 : 0;
    rcon += r;
    all += r + (nb(n.right, 'left') === addr ? 1 : 0) + (nb(n.left2, 'right2') === addr ? 1 : 0) + (nb(n.right2, 'left2') === addr ? 1 : 0);
  }
  const total = infos.size;
  const [tunnel, udp, tcp, subring] = [sum('tunnel'), sum('udp'), sum('tcp'), sum('subring')];
  return {
    'Total Nodes': total,
    'Consistent Nodes': rcon,
    Consistency: total === 0 ? 0 : all / (4 * total),
    Connections: sum('cons'),
    SecurityAssociations: sum('sas'),
    WrappedEdges: sum('wedges'),
    Edges: tunnel + udp + tcp + subring,
    RelayEdges: tunnel,
    SubringEdges: subring,
    TcpEdges: tcp,
    UdpEdges: udp,
    'Crawl took': Math.round(seconds * 1000) / 1000,
  };
}

export function formatStats(s: CrawlStats): string {
  return Object.entries(s).map(([k, v]) => `${k}: ${v}`).join('\n');
}
