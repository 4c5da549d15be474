// The web view's ring: a crawl run in the server over the first node's own RPC (the crawl
// tool's core), cached as the JSON the page reads. One crawl at a time; a new one starts
// only when a viewer asks and the last is older than many times its own duration and 50 ms
// per node found, so an unwatched page costs nothing and a 1,000-node ring is not crawled
// back to back. One routed Information.Info per node brings its TAs and connections too, or
// only its counters and neighbours when the table version the crawl holds is still current.
// A periodic crawl asks a third of the nodes it knows (in ring order, a different third each
// time) and takes the others' last answers when an asked ring neighbour vouches for them (the
// crawl core's reuse), up to reuseMaxMs old; "crawl now" (force) asks every node.
import { gzipSync } from 'node:zlib';
import { Address } from '../../address/address.js';
import { CRAWL_SECTIONS } from '../../node/info.js';
import type { Node } from '../../node/node.js';
import { Mode } from '../../routing/ah-wire.js';
import type { Value } from '../../wire/value.js';
import { crawlFrom, selfOf, statistics, type CrawlStats, type Info } from '../crawl.js';
import { etagOf } from './etag.js';

/** How a link is drawn: relay edges whatever their type, else by connection type. */
export type LinkKind = 'near' | 'shortcut' | 'ondemand' | 'relay' | 'other';
export const LINK_KINDS: readonly LinkKind[] = ['near', 'shortcut', 'ondemand', 'relay', 'other'];

export interface RingNode { address: string; pos: number; info: Info; tas: string[] }
export interface CrawlProgress {
  running: boolean; found: number; pending: number; generation: number;
  startedAt: number | null; finishedAt: number | null; complete: boolean; stats: CrawlStats | null;
}

export interface RingCrawlOptions {
  /** Least time between two crawls' ends and starts. */
  minIntervalMs: number;
  /**
   * The next crawl waits at least this many times the last one's duration: crawling takes at most
   * 1/(1 + factor) of the time. At 1,000 nodes a crawl (2.6 s) made every ~13 s cost 15 % of a core.
   */
  intervalFactor: number;
  /**
   * And at least this long per node found by the last crawl: the crawl's cost grows with the
   * ring, its duration less so once it is cheap. 50 ms re-crawls 1,000 nodes every 50 s at most
   * (as 20 × a 2.6 s crawl did) and leaves 16 nodes at minIntervalMs.
   */
  perNodeMs: number;
  /** Overall limit of one crawl. */
  timeoutMs: number;
  concurrency: number;
  /** A periodic crawl asks one in this many known nodes (1: all). */
  askEvery: number;
  /** A node's answer is taken again at most this long after it was given. */
  reuseMaxMs: number;
}
const RING_CRAWL_DEFAULTS: RingCrawlOptions = { minIntervalMs: 5000, intervalFactor: 20, perNodeMs: 50, timeoutMs: 60_000, concurrency: 64, askEvery: 3, reuseMaxMs: 300_000 };
/** How long after a crawl that took `tookMs` and found `found` nodes the next may start. */
function crawlInterval(o: RingCrawlOptions, tookMs: number, found: number): number {
  return Math.max(o.minIntervalMs, o.intervalFactor * tookMs, o.perNodeMs * found);
}
/** Per request and attempts, as the crawl tool's: a loaded event loop answers late, not never. */
const REQUEST_MS = 10_000;
const ATTEMPTS = 3;

/** `version`: the node's version of its TAs and connections (absent from older nodes). */
type Extra = { tas: string[]; cons: { address: string; type: string; kind: string }[]; version?: string };
/** A node's last answer, when it was given and the node's place in ring order then. */
interface Known { c: { info: Info; extra: Extra }; at: number; index: number }

export class RingCrawl {
  private readonly o: RingCrawlOptions;
  private running = false;
  private stopped = false;
  private found = 0;
  private pending = 0;
  private generation = 0;
  private startedAt: number | null = null;
  private finishedAt: number | null = null;
  private tookMs = 0;
  private complete = false;
  private stats: CrawlStats | null = null;
  private json = '{"generation":0,"nodes":[],"links":[]}';
  private gzipped?: Buffer;
  private etag?: string;
  private known = new Map<string, Known>();
  private asked = 0;

  constructor(private readonly node: () => Node | undefined, o: Partial<RingCrawlOptions> = {}) {
    this.o = { ...RING_CRAWL_DEFAULTS, ...o };
  }

  stop(): void { this.stopped = true; }

  /** The last crawl as the page's JSON (a cached string). */
  ringJson(): string { return this.json; }

  /** The same, gzipped once per crawl (788 KB of JSON at 1,000 nodes is some 10 % of that). */
  ringGzip(): Buffer { return this.gzipped ??= gzipSync(this.json); }

  /** The ETag of that JSON (its hash, once per crawl). */
  ringEtag(): string { return this.etag ??= etagOf(this.json); }

  progress(): CrawlProgress {
    return { running: this.running, found: this.found, pending: this.pending, generation: this.generation,
      startedAt: this.startedAt, finishedAt: this.finishedAt, complete: this.complete, stats: this.stats };
  }

  /** When a viewer's request starts the next crawl, on the node's clock (-Infinity: now). */
  nextAt(): number {
    return this.finishedAt === null ? -Infinity : this.finishedAt + crawlInterval(this.o, this.tookMs, this.found);
  }

  /**
   * Starts a crawl when none runs and the last one is stale (or `force`); never waits for it.
   * `all`: every node is asked ("crawl now"), else a periodic crawl's third.
   */
  refresh(force = false, all = force): Promise<void> | undefined {
    const node = this.node();
    if (this.running || this.stopped || !node) return undefined;
    const now = node.clock.now();
    if (!force && now < this.nextAt()) return undefined;
    this.running = true;
    this.startedAt = now;
    this.found = 0;
    this.pending = 1;
    return this.run(node, all).finally(() => { this.running = false; });
  }

  /** Nodes asked by the last crawl (the others' earlier answers were taken). */
  lastAsked(): number { return this.asked; }

  private async run(node: Node, full: boolean): Promise<void> {
    const clock = node.clock, t0 = clock.now();
    const known = this.known, turn = this.generation % this.o.askEvery, answeredAt = new Map<string, number>();
    const reuse = (addr: string) => {
      const k = known.get(addr);
      return k && k.index % this.o.askEvery !== turn && t0 - k.at < this.o.reuseMaxMs ? k.c : undefined;
    };
    const r = await crawlFrom<Extra>({
      start: node.address.key, clock, deadline: t0 + this.o.timeoutMs, concurrency: this.o.concurrency,
      onProgress: (f, q) => { this.found = f; this.pending = q; },
      fetch: async (addr, left) => {
        const c = await fetchNode(node, addr, left, known.get(addr)?.c.extra);
        if (c) answeredAt.set(addr, clock.now());
        return c;
      },
      ...(full || this.o.askEvery <= 1 ? {} : { reuse }),
    });
    this.asked = r.asked;
    const order = [...r.nodes.keys()].sort((a, b) => ringPosition(a) - ringPosition(b));
    this.known = new Map(order.map((a, index) => [a, { c: r.nodes.get(a)!, at: answeredAt.get(a) ?? known.get(a)?.at ?? t0, index }]));
    this.tookMs = clock.now() - t0;
    const infos = new Map([...r.nodes].map(([a, c]) => [a, c.info]));
    this.stats = statistics(infos, this.tookMs / 1000);
    this.complete = r.complete;
    this.finishedAt = clock.now();
    this.found = r.nodes.size;
    this.pending = r.pending;
    this.generation++;
    this.json = JSON.stringify(ringOf(r.nodes, { ...this.progress(), running: false }));
    this.gzipped = undefined;
    this.etag = undefined;
  }
}

/**
 * Information.Info by a greedy route (a dead node's route lands elsewhere: a miss), asking for
 * its TAs and connections in the same reply; a node that ignores the request (Brunet's, an
 * older one) is asked for them separately.
 */
async function fetchNode(node: Node, addr: string, left: () => number, known?: Extra): Promise<{ info: Info; extra: Extra } | undefined> {
  let address: Address;
  try { address = Address.parse(addr); } catch { return undefined; }
  let info: Info | undefined;
  for (let i = 0; i < ATTEMPTS && !info; i++) {
    try {
      const res = await node.rpc.call({ address, mode: Mode.Greedy }, 'Information.Info', [[...CRAWL_SECTIONS], known?.version ?? null], { timeoutMs: Math.min(REQUEST_MS, left()) });
      if (!res || typeof res !== 'object' || selfOf(res as Info) !== addr) return undefined;
      info = res as Info;
    } catch { /* retried */ }
  }
  if (!info) return undefined;
  const { tas, connections, version, ...rest } = info;
  const v = typeof version === 'string' ? { version } : {};
  if (Array.isArray(tas) && Array.isArray(connections)) return { info: rest, extra: { ...extraOf(tas, connections), ...v } };
  if (known && v.version !== undefined && v.version === known.version) return { info: rest, extra: known };
  const exact = { address, mode: Mode.Exact };
  const [ni, cons] = await Promise.all([
    node.rpc.call(exact, 'sys:link.GetNodeInfo', [], { timeoutMs: Math.min(REQUEST_MS, left()) }).catch(() => null),
    node.rpc.call(exact, 'ConnectionTable.GetConnections', [], { timeoutMs: Math.min(REQUEST_MS, left()) }).catch(() => null),
  ]);
  return { info: rest, extra: extraOf((ni as Info | null)?.tas, cons) };
}

function extraOf(tas: Value | undefined, cons: Value | undefined): Extra {
  return {
    tas: Array.isArray(tas) ? tas.filter((t): t is string => typeof t === 'string') : [],
    cons: (Array.isArray(cons) ? cons : []).flatMap((c) => {
      const o = c as Info;
      return typeof o?.address === 'string' ? [{ address: o.address, type: String(o.type ?? ''), kind: String(o.kind ?? '') }] : [];
    }),
  };
}

export function linkKind(type: string, edgeKind: string): LinkKind {
  if (edgeKind === 'tunnel') return 'relay';
  if (type === 'structured.near') return 'near';
  if (type === 'structured.shortcut') return 'shortcut';
  if (type === 'structured.ondemand') return 'ondemand';
  return 'other';
}

/** Where a node sits on the circle: its address as a fraction of the ring (0 ≤ pos < 1). */
export function ringPosition(address: string): number {
  try { return Number(Address.parse(address).value >> 128n) / 2 ** 32; } catch { return 0; }
}

/**
 * The page's JSON: nodes sorted by address, and each link between two crawled nodes once
 * ([i, j, kind], i < j), drawn in the most telling style either end reports.
 */
export function ringOf(found: Map<string, { info: Info; extra: Extra }>, progress: CrawlProgress): object {
  const list = [...found.entries()].map(([address, c]) => ({ address, pos: ringPosition(address), c })).sort((a, b) => a.pos - b.pos);
  const index = new Map(list.map((n, i) => [n.address, i]));
  const links = new Map<number, [number, number, LinkKind]>();
  const prefer: LinkKind[] = ['relay', 'near', 'ondemand', 'shortcut', 'other'];
  list.forEach((n, i) => {
    for (const con of n.c.extra.cons) {
      const j = index.get(con.address);
      if (j === undefined || j === i) continue;
      const [a, b] = i < j ? [i, j] : [j, i];
      const key = a * list.length + b, kind = linkKind(con.type, con.kind), old = links.get(key);
      if (!old || prefer.indexOf(kind) < prefer.indexOf(old[2])) links.set(key, [a, b, kind]);
    }
  });
  const counts = Object.fromEntries(LINK_KINDS.map((k) => [k, 0])) as Record<LinkKind, number>;
  for (const l of links.values()) counts[l[2]]++;
  return {
    ...progress,
    nodes: list.map((n) => ({ address: n.address, pos: n.pos, tas: n.c.extra.tas, info: n.c.info })),
    links: [...links.values()].map(([a, b, k]) => [a, b, LINK_KINDS.indexOf(k)]),
    linkKinds: LINK_KINDS,
    linkCounts: counts,
  };
}
