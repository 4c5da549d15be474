// Ring crawl through the local control API: breadth-first over every node's neighbour
// map with many requests in flight, then Brunet's consistency statistics.
import { ControlClient, ControlClientError, NOT_RUNNING } from '../src/control/client.js';
import type { Value } from '../src/wire/value.js';

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

export interface CrawlOptions {
  port?: number;
  concurrency?: number;
  /** Overall time limit: no request starts after it, and the crawl returns what it found (complete: false). */
  timeoutMs?: number;
  attempts?: number;
  onProgress?: (found: number, queued: number) => void;
}

export interface CrawlResult { stats: CrawlStats; nodes: Map<string, Info>; complete: boolean; pending: number }

type Info = { [k: string]: Value };
const NEIGHBOR_KEYS = ['left', 'left2', 'right', 'right2', 'shortcut'] as const;
/** One request's limit, and the overall limit when none is given. */
const REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_CRAWL_TIMEOUT_MS = 60_000;

export class CrawlError extends Error {
  /** True when nothing listens on the control port at all (no node running). */
  constructor(message: string, readonly notRunning = false) { super(message); }
}

export async function crawl(o: CrawlOptions = {}): Promise<CrawlResult> {
  const client = new ControlClient(o.port ?? 10000, '127.0.0.1', o.concurrency ?? 64);
  const t0 = performance.now();
  const deadline = t0 + (o.timeoutMs ?? DEFAULT_CRAWL_TIMEOUT_MS);
  const left = () => Math.max(1, Math.min(REQUEST_TIMEOUT_MS, Math.round(deadline - performance.now())));
  try {
    let start: string;
    try {
      const nb = await client.call('localproxy', ['sys:link.GetNeighbors'], left()) as Info;
      start = String(nb.self);
    } catch (e) {
      throw new CrawlError(`no node answered on 127.0.0.1:${o.port ?? 10000}: ${(e as Error).message}`,
        e instanceof ControlClientError && e.code === NOT_RUNNING);
    }
    const infos = new Map<string, Info>();
    const seen = new Set<string>([start]);
    const queue = [start];
    let active = 0;
    const complete = await new Promise<boolean>((done) => {
      let finished = false;
      const finish = (all: boolean) => { if (!finished) { finished = true; clearTimeout(timer); done(all); } };
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - performance.now()));
      const pump = () => {
        while (!finished && active < (o.concurrency ?? 64) && queue.length > 0) {
          const addr = queue.shift()!;
          active++;
          fetchInfo(client, addr, o, left).then((info) => {
            if (finished) return;
            if (info) {
              infos.set(addr, info);
              const nb = (info.neighbors ?? {}) as Info;
              for (const k of NEIGHBOR_KEYS) {
                const a = nb[k];
                if (typeof a === 'string' && !seen.has(a)) { seen.add(a); queue.push(a); }
              }
            }
            o.onProgress?.(infos.size, queue.length + active - 1);
          }).finally(() => { active--; if (queue.length === 0 && active === 0) finish(true); else pump(); });
        }
      };
      pump();
    });
    return { stats: statistics(infos, (performance.now() - t0) / 1000), nodes: infos, complete, pending: queue.length + active };
  } finally {
    client.close();
  }
}

/** Information.Info from one node; a greedy route that lands elsewhere (dead node) is a miss. */
async function fetchInfo(client: ControlClient, addr: string, o: CrawlOptions, left: () => number): Promise<Info | undefined> {
  for (let i = 0; i < (o.attempts ?? 3); i++) {
    try {
      const res = await client.call('proxy', [addr, 3, 1, 'Information.Info'], left());
      const info = (Array.isArray(res) ? res[0] : res) as Info | undefined;
      const self = (info?.neighbors as Info | undefined)?.self;
      if (info && self === addr) return info;
      if (info) return undefined;
    } catch { /* retried */ }
  }
  return undefined;
}

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
