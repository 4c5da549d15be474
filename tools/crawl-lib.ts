// Ring crawl through the local control API: the crawl core (src/control/crawl.ts) with each
// node's Information.Info fetched by a greedy `proxy` call on the control port.
import { ControlClient, ControlClientError, NOT_RUNNING } from '../src/control/client.js';
import { realClock } from '../src/util/clock.js';
import { crawlFrom, selfOf, statistics, type CrawlStats, type Info } from '../src/control/crawl.js';

export { formatStats, statistics, type CrawlStats } from '../src/control/crawl.js';

export interface CrawlOptions {
  port?: number;
  concurrency?: number;
  /** Overall time limit: no request starts after it, and the crawl returns what it found (complete: false). */
  timeoutMs?: number;
  attempts?: number;
  onProgress?: (found: number, queued: number) => void;
}

export interface CrawlResult { stats: CrawlStats; nodes: Map<string, Info>; complete: boolean; pending: number }

/** The overall limit when none is given. */
export const DEFAULT_CRAWL_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

export class CrawlError extends Error {
  /** True when nothing listens on the control port at all (no node running). */
  constructor(message: string, readonly notRunning = false) { super(message); }
}

export async function crawl(o: CrawlOptions = {}): Promise<CrawlResult> {
  const client = new ControlClient(o.port ?? 10000, '127.0.0.1', o.concurrency ?? 64);
  const t0 = realClock.now();
  const deadline = t0 + (o.timeoutMs ?? DEFAULT_CRAWL_TIMEOUT_MS);
  try {
    let start: string;
    try {
      const left = Math.max(1, Math.min(REQUEST_TIMEOUT_MS, Math.round(deadline - realClock.now())));
      const nb = await client.call('localproxy', ['sys:link.GetNeighbors'], left) as Info;
      start = String(nb.self);
    } catch (e) {
      throw new CrawlError(`no node answered on 127.0.0.1:${o.port ?? 10000}: ${(e as Error).message}`,
        e instanceof ControlClientError && e.code === NOT_RUNNING);
    }
    const r = await crawlFrom({
      start, clock: realClock, deadline, concurrency: o.concurrency, onProgress: o.onProgress,
      fetch: async (addr, left) => {
        const info = await fetchInfo(client, addr, o.attempts ?? 3, left);
        return info && { info, extra: undefined };
      },
    });
    const nodes = new Map([...r.nodes].map(([a, c]) => [a, c.info]));
    return { stats: statistics(nodes, (realClock.now() - t0) / 1000), nodes, complete: r.complete, pending: r.pending };
  } finally {
    client.close();
  }
}

/** Information.Info from one node; a greedy route that lands elsewhere (dead node) is a miss. */
async function fetchInfo(client: ControlClient, addr: string, attempts: number, left: () => number): Promise<Info | undefined> {
  for (let i = 0; i < attempts; i++) {
    try {
      const res = await client.call('proxy', [addr, 3, 1, 'Information.Info'], left());
      const info = (Array.isArray(res) ? res[0] : res) as Info | undefined;
      if (info && selfOf(info) === addr) return info;
      if (info) return undefined;
    } catch { /* retried */ }
  }
  return undefined;
}
