// The web view's parts without a browser: the history's ring buffer and rates (virtual
// time), the ring JSON's links (one per pair, in the most telling style), and the routes on
// a live control server: loopback host names only, the crawl in the server, the local panel
// with its DHT and a VPN's status, the counters the history samples.
import t from 'tap';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { ControlServer } from '../src/control/server.js';
import { History, type Counters } from '../src/control/web/history.js';
import { LINK_KINDS, linkKind, RingCrawl, ringOf, ringPosition, type CrawlProgress } from '../src/control/web/ring-crawl.js';
import { information } from '../src/node/info.js';
import { VirtualClock } from '../src/util/virtual-clock.js';
import { attachDht } from './helpers/dht.js';
import { freeTcpPort } from './helpers/ports.js';
import { consistency, startRing, stopAll, waitFor } from './helpers/ring.js';

t.test('history: rates per second between samples, an hour bounded, oldest first', async (t) => {
  const clock = new VirtualClock(1000);
  const c: Counters = { connections: 3, messages: 0, puts: 0, gets: 0 };
  const h = new History(() => ({ ...c }), clock, 5000, 4);
  h.start();
  for (let i = 1; i <= 6; i++) {
    c.messages += 50 * i; c.puts += 5; c.gets += 10; c.connections = 3 + i;
    await clock.run(clock.now() + 5000);
  }
  h.stop();
  await clock.run(clock.now() + 20_000);
  const s = h.samples();
  t.equal(s.length, 4, 'at most capacity samples');
  t.same(s.map((x) => x.connections), [6, 7, 8, 9], 'the newest four, oldest first');
  t.same(s.map((x) => x.messagesPerSec), [30, 40, 50, 60], 'messages per second over each period');
  t.ok(s.every((x) => x.putsPerSec === 1 && x.getsPerSec === 2), 'puts and gets per second');
  t.ok(s.every((x, i) => i === 0 || x.t - s[i - 1]!.t === 5000), 'one sample per period; none after stop');
  t.equal(new History(() => c, clock).capacity * new History(() => c, clock).periodMs, 3600_000, 'the defaults keep one hour');
});

t.test('ring JSON: nodes by address, each linked pair once, relay and near outrank shortcut', async (t) => {
  const addr = (hi: string) => 'brunet:node:' + hi;
  // Addresses in order of their position on the ring (base32: A < B < … < Z < 2 … 7).
  const [a, b, c, d] = [addr('A'.repeat(32)), addr('I'.repeat(32)), addr('Q'.repeat(32)), addr('Y'.repeat(32))];
  t.ok(ringPosition(a) < ringPosition(b) && ringPosition(b) < ringPosition(c) && ringPosition(c) < ringPosition(d), 'positions follow addresses');
  const node = (self: string, cons: [string, string, string][]) => ({ info: { neighbors: { self } }, extra: { tas: [`brunet.udp://127.0.0.1:1`], cons: cons.map(([address, type, kind]) => ({ address, type, kind })) } });
  const found = new Map([
    [c, node(c, [[a, 'structured.shortcut', 'udp'], [b, 'structured.near', 'tunnel']])],
    [a, node(a, [[c, 'structured.near', 'udp'], [b, 'structured.ondemand', 'udp'], [d, 'structured.near', 'udp']])],
    [b, node(b, [[a, 'structured.shortcut', 'udp'], [c, 'structured.near', 'tunnel'], [b, 'leaf', 'udp']])],
  ]);
  const r = ringOf(found, { generation: 1 } as CrawlProgress) as { nodes: { address: string }[]; links: [number, number, number][]; linkCounts: Record<string, number> };
  t.same(r.nodes.map((n) => n.address), [a, b, c], 'sorted by address; d (not crawled) is left out');
  const links = r.links.map(([i, j, k]) => `${i}-${j} ${LINK_KINDS[k]}`).sort();
  t.same(links, ['0-1 ondemand', '0-2 near', '1-2 relay'], 'one link per pair, no self link, none to uncrawled nodes');
  t.same(r.linkCounts, { near: 1, shortcut: 0, ondemand: 1, relay: 1, other: 0 });
  t.equal(linkKind('leaf', 'tcp'), 'other');
});

function get(port: number, path: string, o: { host?: string; method?: string; gzip?: boolean; ifNoneMatch?: string } = {}): Promise<{ status: number; type: string; body: string; encoding?: string; etag?: string }> {
  return new Promise((resolve, reject) => {
    const headers = { host: o.host ?? `127.0.0.1:${port}`, ...(o.gzip ? { 'accept-encoding': 'gzip, deflate' } : {}), ...(o.ifNoneMatch ? { 'if-none-match': o.ifNoneMatch } : {}) };
    const req = http.request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      const encoding = res.headers['content-encoding'];
      res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
        const raw = Buffer.concat(chunks);
        const body = (encoding === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        const etag = res.headers.etag;
        resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body, ...(encoding ? { encoding } : {}), ...(etag ? { etag } : {}) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
const json = async (port: number, path: string) => JSON.parse((await get(port, path)).body);

t.test('the crawl asks each node once for Information.Info with its TAs and connections, three times a node that ignores the request', async (t) => {
  const nodes = await startRing(6, 'memory');
  t.teardown(() => stopAll(nodes));
  t.ok(await waitFor(() => consistency(nodes) === 1, 20_000), 'ring formed');
  // Two nodes answer as Brunet's (and older ones) do: Information.Info without arguments.
  for (const n of nodes.slice(4)) n.rpc.register('Information.Info', () => information(n));
  const crawl = new RingCrawl(() => nodes[0]);
  t.teardown(() => crawl.stop());
  const before = nodes[0]!.rpc.stats.requests;
  await crawl.refresh(true);
  t.equal(nodes[0]!.rpc.stats.requests - before, 4 * 1 + 2 * 3, 'one request per node, three for the two old ones');
  const ring = JSON.parse(crawl.ringJson()) as { nodes: { address: string; tas: string[]; info: Record<string, unknown> }[]; links: [number, number, number][] };
  t.equal(ring.nodes.length, 6);
  for (const n of nodes) {
    const r = ring.nodes.find((x) => x.address === n.address.key)!;
    t.same(r.tas, n.info().tas.map((ta) => ta.key), `TAs of ${n.address.key.slice(0, 12)}`);
    t.notOk('connections' in r.info || 'tas' in r.info, 'Information.Info as the page shows it: the sections are taken out');
  }
  const pairs = new Set(nodes.flatMap((n) => [...n.table.all()].map((c) => [n.address.key, c.address.key].sort().join())));
  t.equal(ring.links.length, pairs.size, 'every connected pair linked once, from either end');
});

t.test('Information.Info with sections carries a version and leaves them out while the caller\'s version is current', async (t) => {
  const nodes = await startRing(5, 'memory');
  t.teardown(() => stopAll(nodes));
  t.ok(await waitFor(() => consistency(nodes) === 1, 20_000), 'ring formed');
  const n = nodes[1]!, sections = ['tas', 'connections'];
  const ask = async (known: string | null) => await n.rpc.callLocal('Information.Info', [sections, known]) as Record<string, unknown>;
  const first = await ask(null);
  t.type(first.version, 'string', 'a version');
  t.same(first.tas, n.info().tas.map((ta) => ta.key), 'the TAs');
  t.equal((first.connections as unknown[]).length, n.table.size, 'the connections');
  const again = await ask(first.version as string);
  t.equal(again.version, first.version, 'the same version while nothing changed');
  t.notOk('tas' in again || 'connections' in again, 'and no sections');
  t.equal(again.cons, n.table.size, 'the counters are still there');
  t.notOk('version' in (await n.rpc.callLocal('Information.Info', []) as object), 'no version without sections (as Brunet)');
  // The table changes: a new version and the sections again.
  const size = n.table.size, peer = [...n.table.all()][0]!;
  n.table.remove(peer);
  const changed = await ask(first.version as string);
  t.not(changed.version, first.version, 'a new version after the table changed');
  t.equal((changed.connections as unknown[]).length, size - 1, 'with the connections as they are now');
});

t.test('a periodic crawl asks a third of the nodes and takes the others\' vouched answers; crawl now asks all; a node gone is not taken', async (t) => {
  const nodes = await startRing(12, 'memory');
  t.teardown(() => stopAll(nodes));
  t.ok(await waitFor(() => consistency(nodes) === 1, 20_000), 'ring formed');
  const crawl = new RingCrawl(() => nodes[0], { minIntervalMs: 0, intervalFactor: 0, perNodeMs: 0 });
  t.teardown(() => crawl.stop());
  type Ring = { nodes: { address: string; tas: string[] }[]; links: [number, number, number][]; stats: Record<string, number> };
  const ring = () => JSON.parse(crawl.ringJson()) as Ring;
  // The young ring still changes (edges, trimmed connections, second neighbours): the nodes
  // found are compared, not every counter.
  const figures = (r: Ring) => ({ nodes: r.nodes.map((n) => n.address), total: r.stats['Total Nodes'] });
  await crawl.refresh(true);
  t.equal(crawl.lastAsked(), 12, 'the first crawl asks every node');
  const full = figures(ring());
  t.equal(full.nodes.length, 12);
  const served = () => nodes.map((n) => n.rpc.stats.served);
  const s0 = served();
  for (let i = 0; i < 3; i++) {
    await crawl.refresh();
    t.ok(crawl.lastAsked() < 12, `periodic crawl ${i + 1} asks fewer nodes (${crawl.lastAsked()})`);
    t.same(figures(ring()), full, 'and finds the same nodes');
  }
  const s1 = served();
  t.ok(nodes.every((_, i) => s1[i]! > s0[i]!), 'over three periodic crawls every node was asked');
  await crawl.refresh(true);
  t.equal(crawl.lastAsked(), 12, 'crawl now asks every node');
  // Two nodes leave: the next periodic crawl does not take their old answers.
  const gone = nodes.splice(4, 2);
  await Promise.all(gone.map((n) => n.stop()));
  t.ok(await waitFor(() => consistency(nodes) === 1, 20_000), 'the ring closed again');
  await crawl.refresh();
  t.equal(ring().nodes.length, 10, 'a periodic crawl finds the 10 left');
  t.notOk(ring().nodes.some((n) => gone.some((g) => g.address.key === n.address)), 'and not the two gone');
});

t.test('routes on a live control server: loopback names only, crawl in the server, local panel', async (t) => {
  const nodes = await startRing(6, 'memory');
  t.teardown(() => stopAll(nodes));
  const dhts = await Promise.all(nodes.map((n) => attachDht(n)));
  t.teardown(() => Promise.all(dhts.map((d) => d.close())));
  t.ok(await waitFor(() => consistency(nodes) === 1, 20_000), 'ring formed');
  const port = await freeTcpPort();
  const server = new ControlServer(nodes, port, undefined, { dhts });
  await server.start();
  t.teardown(() => server.stop());

  const page = await get(port, '/');
  t.equal(page.status, 200);
  t.match(page.type, /^text\/html/);
  t.notMatch(page.body, /(src|href)\s*=\s*["']?(https?:)?\/\//i, 'nothing loaded from elsewhere');
  t.equal((await get(port, '/', { method: 'HEAD' })).body, '', 'HEAD: headers only');
  for (const host of ['localhost', `localhost:${port}`, `[::1]:${port}`]) t.equal((await get(port, '/api/history', { host })).status, 200, `Host ${host} is served`);
  for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.evil.example`]) {
    const r = await get(port, '/api/ring', { host });
    t.equal(r.status, 403, `Host ${host} is refused (DNS rebinding)`);
  }
  t.equal((await get(port, '/xm.rem')).status, 405, 'XML-RPC still wants POST');

  // The first /api/crawl starts a crawl; it finishes in the background.
  const first = await json(port, '/api/crawl');
  t.equal(typeof first.running, 'boolean');
  let p = first;
  for (let i = 0; i < 100 && !(p.generation >= 1 && !p.running); i++) { await new Promise((r) => setTimeout(r, 100)); p = await json(port, '/api/crawl'); }
  t.equal(p.generation, 1, 'one crawl, not one per request');
  t.equal(p.stats['Total Nodes'], 6);
  t.equal(p.complete, true);
  const ring = await json(port, '/api/ring');
  t.equal(ring.nodes.length, 6);
  t.ok(ring.nodes.every((n: { tas: string[]; info: { cons: number } }) => n.tas.length > 0 && n.info.cons > 0), 'each node with its TAs and Information.Info');
  t.ok(ring.links.length >= 6, 'links');
  const zipped = await get(port, '/api/ring', { gzip: true });
  t.equal(zipped.encoding, 'gzip', '/api/ring gzipped for a client that takes it');
  t.same(JSON.parse(zipped.body), ring, 'the same JSON');
  t.equal((await json(port, '/api/crawl')).generation, 1, 'a fresh result is not crawled again at once');
  // Conditional GETs: the page and the ring carry an ETag; a request naming it gets 304 and no body.
  const etag = zipped.etag!;
  t.match(etag, /^W\/"/, '/api/ring carries a weak ETag');
  t.equal((await get(port, '/api/ring')).etag, etag, 'the same for the plain and the gzipped body');
  const same = await get(port, '/api/ring', { gzip: true, ifNoneMatch: etag });
  t.same([same.status, same.body, same.etag], [304, '', etag], 'unchanged: 304, no body');
  t.equal((await get(port, '/api/ring', { ifNoneMatch: `W/"other", ${etag}` })).status, 304, 'a list of tags');
  t.equal((await get(port, '/api/ring', { ifNoneMatch: 'W/"other"' })).status, 200, 'another tag: the body');
  t.equal((await get(port, '/', { ifNoneMatch: page.etag! })).status, 304, 'the page too');
  t.equal((await get(port, '/api/crawl', { ifNoneMatch: '*' })).status, 200, '/api/crawl is never conditional (it changes each time)');
  await json(port, '/api/crawl?now=1');
  t.ok(await waitFor(() => server.web.crawl.progress().generation === 2, 10_000), '?now=1 forces a crawl');
  const next = await get(port, '/api/ring', { ifNoneMatch: etag });
  t.equal(next.status, 200, 'a new crawl: the new body for the old tag');
  t.not(next.etag, etag, 'with a new ETag');

  // The local panel: the first node with its DHT, no security, no relay, no VPN.
  await dhts[0]!.dht.put(new TextEncoder().encode('k'), new TextEncoder().encode('v'), 600);
  await dhts[0]!.registrations.register(new TextEncoder().encode('r'), new TextEncoder().encode('v'), 600, false);
  const local = await json(port, '/api/local');
  t.equal(local.address, nodes[0]!.address.key);
  t.equal(local.processNodes, 6);
  t.equal(local.connections.total, nodes[0]!.table.size);
  t.equal(local.dht.registrations, 1);
  t.equal(local.dht.registrationsOk, 1);
  t.ok(local.dht.client.puts >= 2, 'DHT client counters');
  t.equal(typeof local.dht.entries, 'number');
  t.equal(local.secure, null, 'security off');
  t.equal(local.vpn, null, 'no VPN');
  t.ok(local.nat.length >= 0 && Array.isArray(local.tas));

  // A VPN's status joins the panel (refreshed in the background).
  server.web.setVpn(async () => ({ local_state: { ip4: '10.1.0.1' }, peers: [{ uid: nodes[1]!.address.key, ip4: '10.1.0.2', status: 'online', path: 'direct', rttMs: 0.5 }] }));
  await json(port, '/api/local');
  await new Promise((r) => setTimeout(r, 50));
  const withVpn = await json(port, '/api/local');
  t.equal(withVpn.vpn.peers[0].ip4, '10.1.0.2');

  // The history's counters move with traffic (puts served by the replicas of this process).
  server.web.history.sample();
  await dhts[2]!.dht.put(new TextEncoder().encode('k2'), new TextEncoder().encode('v'), 600);
  await dhts[3]!.dht.get(new TextEncoder().encode('k2'));
  await new Promise((r) => setTimeout(r, 20));
  server.web.history.sample();
  const hr = await get(port, '/api/history');
  const h = JSON.parse(hr.body);
  t.equal((await get(port, '/api/history', { ifNoneMatch: hr.etag! })).status, 304, 'no new sample: 304');
  await new Promise((r) => setTimeout(r, 5));
  server.web.history.sample();
  t.equal((await get(port, '/api/history', { ifNoneMatch: hr.etag! })).status, 200, 'a new sample: the body');
  const last = h.samples[h.samples.length - 1];
  t.ok(last.putsPerSec > 0 && last.getsPerSec > 0 && last.messagesPerSec > 0, `rates move: ${JSON.stringify(last)}`);
  t.equal(last.connections, nodes.reduce((s, n) => s + n.table.size, 0), 'connections of the whole process');
});

t.test('a node from a config: the web view on the loopback control port, and nowhere when XmlRpcManager is off', async (t) => {
  const { parseNodeConfig } = await import('../src/config/node-config.js');
  const { startOverlay } = await import('../src/cli/overlay.js');
  const { silentLogger } = await import('../src/util/log.js');
  const port = await freeTcpPort();
  const config = (enabled: boolean) => parseNodeConfig(`<NodeConfig><BrunetNamespace>web</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>0</port></EdgeListener></EdgeListeners>
  <XmlRpcManager><Enabled>${enabled}</Enabled><Port>${port}</Port></XmlRpcManager><Dht><DataDirectory>memory</DataDirectory></Dht></NodeConfig>`);
  const off = await startOverlay(config(false), { count: 1, log: silentLogger, writeAddress: false });
  try {
    t.equal(off.server, undefined, 'no control server');
    await t.rejects(get(port, '/'), { code: 'ECONNREFUSED' }, 'nothing listens on the port');
  } finally { await off.stop(); }
  const on = await startOverlay(config(true), { count: 1, log: silentLogger, writeAddress: false });
  try {
    t.equal(on.server?.host, '127.0.0.1', 'bound to loopback only');
    t.equal((await get(port, '/')).status, 200, 'the page');
    const local = await json(port, '/api/local');
    t.equal(local.address, on.nodes[0]!.address.key);
    t.equal(typeof local.dht.entries, 'number', 'with its DHT');
  } finally { await on.stop(); }
});
