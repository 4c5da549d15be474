// The web view on the control port: GET / (one self-contained page) and the JSON it reads.
//   /api/crawl    the crawl's progress and statistics (starts a crawl when the last is stale; ?now=1 forces one)
//   /api/ring     the last crawl: nodes by address with Information.Info and TAs, links by kind
//   /api/local    the first node's panel (local.ts)
//   /api/history  the last hour of connections, messages/s, DHT puts and gets/s (history.ts)
// Only requests addressed to a loopback host name are answered (no DNS rebinding).
// The page, /api/ring and /api/history carry an ETag (a hash of the body, computed once per
// body) and answer a request whose If-None-Match names it with 304 and no body: the page
// fetches with cache 'no-cache', so the browser revalidates instead of taking the body again
// while it has not changed (the ring changes once per crawl, the history once per sample).
import type http from 'node:http';
import type { Node } from '../../node/node.js';
import { realClock } from '../../util/clock.js';
import { etagOf, notModified } from './etag.js';
import { History } from './history.js';
import { LocalPanel, type VpnStatus, type WebServices } from './local.js';
import { PAGE } from './page.js';
import { RingCrawl, type RingCrawlOptions } from './ring-crawl.js';

export { type WebServices } from './local.js';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const ROUTES = new Set(['/', '/index.html', '/api/crawl', '/api/ring', '/api/local', '/api/history']);

/**
 * Answers 403 and returns false unless the request names a loopback host: a page on another
 * site that rebinds its DNS name to 127.0.0.1 must not read the view or the metrics.
 */
export function refuseForeignHost(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  if (LOOPBACK_HOSTS.has(host)) return true;
  res.writeHead(403, { 'content-type': 'text/plain' });
  res.end('the control port answers GET only to requests for 127.0.0.1 or localhost\n');
  return false;
}

const PAGE_ETAG = etagOf(PAGE);

/** Whether the client takes a gzipped body (browsers and fetch() do). */
function acceptsGzip(req: http.IncomingMessage): boolean {
  return /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
}

export class WebView {
  readonly crawl: RingCrawl;
  readonly history: History;
  private readonly local: LocalPanel;
  private historyBody?: { version: number; body: string; etag: string };

  constructor(private readonly nodes: Node[], services: WebServices = {}, crawl: Partial<RingCrawlOptions> = {}) {
    this.local = new LocalPanel(nodes, services);
    this.crawl = new RingCrawl(() => nodes[0], crawl);
    this.history = new History(() => this.local.counters(), nodes[0]?.clock ?? realClock);
  }

  /** The VPN started on the first node (groupvpn): its status joins the local panel. */
  setVpn(vpn: VpnStatus | undefined): void { this.local.services.vpn = vpn; }

  start(): void { if (this.nodes.length > 0) this.history.start(); }

  stop(): void { this.history.stop(); this.crawl.stop(); }

  handles(method: string | undefined, path: string): boolean {
    return (method === 'GET' || method === 'HEAD') && ROUTES.has(path);
  }

  async serve(req: http.IncomingMessage, url: URL, res: http.ServerResponse): Promise<void> {
    if (!refuseForeignHost(req, res)) return;
    const send = (type: string, body: string | Buffer, encoding?: string, etag?: string) => {
      const head = req.method === 'HEAD';
      if (etag && notModified(req, etag)) {
        res.writeHead(304, { etag, 'cache-control': 'no-cache', vary: 'accept-encoding' });
        return void res.end();
      }
      // With an ETag the browser may keep the body, but must ask again before each use.
      res.writeHead(200, { 'content-type': type, 'cache-control': etag ? 'no-cache' : 'no-store', 'x-content-type-options': 'nosniff', vary: 'accept-encoding',
        ...(encoding ? { 'content-encoding': encoding } : {}), ...(etag ? { etag } : {}) });
      res.end(head ? undefined : body);
    };
    switch (url.pathname) {
      case '/': case '/index.html':
        return send('text/html; charset=utf-8', PAGE, undefined, PAGE_ETAG);
      case '/api/crawl':
        this.crawl.refresh(url.searchParams.get('now') === '1');
        return send('application/json', JSON.stringify({ now: this.nodes[0]?.clock.now() ?? null, ...this.crawl.progress() }));
      case '/api/ring': {
        this.crawl.refresh();
        const etag = this.crawl.ringEtag();
        return acceptsGzip(req) ? send('application/json', this.crawl.ringGzip(), 'gzip', etag) : send('application/json', this.crawl.ringJson(), undefined, etag);
      }
      case '/api/local': {
        let body: string;
        try { body = JSON.stringify(await this.local.panel()); } catch (e) { body = JSON.stringify({ error: (e as Error).message }); }
        return send('application/json', body);
      }
      case '/api/history': {
        const h = this.historyJson();
        return send('application/json', h.body, undefined, h.etag);
      }
    }
  }

  /** The history's JSON and its ETag, made again only after a new sample. */
  private historyJson(): { body: string; etag: string } {
    const version = this.history.version;
    if (this.historyBody?.version !== version) {
      const body = JSON.stringify({ periodMs: this.history.periodMs, samples: this.history.samples() });
      this.historyBody = { version, body, etag: etagOf(body) };
    }
    return this.historyBody;
  }
}
