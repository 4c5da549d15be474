// Ring crawl through the local control API: breadth-first over every node's neighbour
// map with many requests in flight, then Brunet's consistency statistics.
import { ControlClient } from '../src/control/client.js';
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

export interface CrawlOptions { port?: number; concurrency?: number; timeoutMs?: number; attempts?: number; onProgress?: (found: number, queued: number) => void }

type Info = { [k: string]: Value };
const NEIGHBOR_KEYS = ['left', 'left2', 'right', 'right2', 'shortcut'] as const;

export class CrawlError extends Error {}

export async function crawl(o: CrawlOptions = {}): Promise<{ stats: CrawlStats; nodes: Map<string, Info> }> {
  const client = new ControlClient(o.port ?? 10000, '127.0.0.1', o.concurrency ?? 64);
  const t0 = performance.now();
  try {
    let start: string;
    try {
      const nb = await client.localproxy('sys:link.GetNeighbors') as Info;
      start = String(nb.self);
    } catch (e) {
      throw new CrawlError(`no node answered on 127.0.0.1:${o.port ?? 10000}: ${(e as Error).message}`);
    }
    const infos = new Map<string, Info>();
    const seen = new Set<string>([start]);
    const queue = [start];
    let active = 0;
    await new Promise<void>((done) => {
      const pump = () => {
        while (active < (o.concurrency ?? 64) && queue.length > 0) {
          const addr = queue.shift()!;
          active++;
          fetchInfo(client, addr, o).then((info) => {
            if (info) {
              infos.set(addr, info);
              const nb = (info.neighbors ?? {}) as Info;
              for (const k of NEIGHBOR_KEYS) {
                const a = nb[k];
                if (typeof a === 'string' && !seen.has(a)) { seen.add(a); queue.push(a); }
              }
            }
            o.onProgress?.(infos.size, queue.length + active - 1);
          }).finally(() => { active--; if (queue.length === 0 && active === 0) done(); else pump(); });
        }
      };
      pump();
    });
    return { stats: statistics(infos, (performance.now() - t0) / 1000), nodes: infos };
  } finally {
    client.close();
  }
}

/** Information.Info from one node; a greedy route that lands elsewhere (dead node) is a miss. */
async function fetchInfo(client: ControlClient, addr: string, o: CrawlOptions): Promise<Info | undefined> {
  for (let i = 0; i < (o.attempts ?? 3); i++) {
    try {
      const res = await client.proxy(addr, 3, 1, 'Information.Info');
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
