// The web view in a real browser (Debian's chromium through playwright-core): a 16-node UDP
// ring in this process with the control server on a loopback port; the page must draw 16
// nodes and their links, show a selected node's address, show the same crawl figures as the
// crawl tool, and follow the ring down to 12 nodes after 4 are stopped.
import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlServer } from '../src/control/server.js';
import type { Node } from '../src/node/node.js';
import { crawl } from '../tools/crawl-lib.js';
import { consistency, ringCorrect, startRing, stopAll, waitFor } from './helpers/ring.js';
import { freeTcpPort } from './helpers/ports.js';

const CHROMIUM = '/usr/bin/chromium';

/** Distinct node pairs with a connection, between live nodes: what the ring should draw. */
function expectedLinks(nodes: Node[]): number {
  const live = new Set(nodes.map((n) => n.address.key));
  const pairs = new Set<string>();
  for (const n of nodes) for (const c of n.table.all()) {
    if (!live.has(c.address.key)) continue;
    pairs.add([n.address.key, c.address.key].sort().join(' '));
  }
  return pairs.size;
}

const attr = (page: Page, sel: string, name: string) => page.$eval(sel, (e, n) => e.getAttribute(n), name);
const shown = async (page: Page) => Number(await attr(page, '#ring', 'data-nodes'));

/** The crawl statistics table as the page shows it, numbers parsed. */
async function pageStats(page: Page): Promise<Record<string, number>> {
  const rows = await page.$$eval('#stats [data-stat]', (trs) => trs.map((r) => [r.getAttribute('data-stat')!, r.querySelector('td')!.textContent!]));
  return Object.fromEntries(rows.map(([k, v]) => [k, Number(v)]));
}

/** Asks the server for a new crawl from the page and waits (bounded) until the page shows it. */
async function freshCrawl(page: Page): Promise<void> {
  const gen = Number(await attr(page, '#ring', 'data-generation'));
  await page.click('#crawl-now');
  await page.waitForFunction((g) => Number(document.getElementById('ring')!.getAttribute('data-generation')) > g, gen, { timeout: 15_000 });
}

t.test('the web view in chromium follows a 16-node ring', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) t.fail(`${CHROMIUM} is missing (tools/test-deps.sh installs chromium)`);
    else t.comment(`${CHROMIUM} is missing: run tools/test-deps.sh; skipping the browser test`);
    return;
  }
  const nodes = await startRing(16, 'udp');
  t.teardown(() => stopAll(nodes));
  t.ok(await waitFor(() => consistency(nodes) === 1 && ringCorrect(nodes), 20_000), 'a consistent ring within 20 s');
  const port = await freeTcpPort();
  const server = new ControlServer(nodes, port);
  await server.start();
  t.teardown(() => server.stop());

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'], timeout: 30_000 });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const external: string[] = [];
  page.on('request', (r) => { if (!r.url().startsWith(`http://127.0.0.1:${port}/`)) external.push(r.url()); });
  await page.goto(`http://127.0.0.1:${port}/`, { timeout: 15_000 });

  await page.waitForFunction(() => Number(document.getElementById('ring')!.getAttribute('data-nodes')) > 0, undefined, { timeout: 20_000 });
  t.equal(await shown(page), 16, 'the ring shows 16 nodes');
  t.equal(Number(await page.textContent('[data-count="nodes"]')), 16, 'the legend says 16 nodes');

  // Links: the page's count equals the distinct connected pairs of the live tables (which
  // may change between a crawl and now: retried with a fresh crawl, bounded).
  let links = 0, want = -1;
  for (let i = 0; i < 5 && links !== want; i++) {
    if (i > 0) await freshCrawl(page);
    links = Number(await attr(page, '#ring', 'data-links'));
    want = expectedLinks(nodes);
  }
  t.equal(links, want, `the ring draws every connected pair once (${want})`);
  const kinds = Object.fromEntries(await page.$$eval('#legend [data-kind]', (s) => s.map((e) => [e.getAttribute('data-kind')!, Number(e.querySelector('b')!.textContent)])));
  t.ok(kinds.near >= 16, `near links drawn in their own style (${kinds.near})`);
  t.equal(Object.values(kinds).reduce((a, b) => a + b, 0), links, 'the legend\'s counts by kind add up to the links');

  // Selecting a node on the canvas shows its Information.Info.
  const target = nodes[5]!.address.key;
  const at = await page.evaluate((a) => (window as unknown as { ringView: { positionOf(a: string): { x: number; y: number } | null } }).ringView.positionOf(a), target);
  t.ok(at, 'the page knows where the node is drawn');
  await page.mouse.click(at!.x, at!.y);
  t.equal(await attr(page, '#details', 'data-address'), target, 'clicking the node selects it');
  t.match(await page.textContent('#details'), target, 'and shows its address');
  t.match(await page.textContent('#details'), /edges udp\/tcp\/relay\s*\d+ \/ 0 \/ 0/, 'and its edge kinds');

  // Crawl figures: the same as the crawl tool's (all but the time it took).
  let same = false, mine: Record<string, number> = {}, tool: Record<string, number> = {};
  for (let i = 0; i < 5 && !same; i++) {
    if (i > 0) await freshCrawl(page);
    const r = await crawl({ port, timeoutMs: 20_000 });
    mine = await pageStats(page);
    tool = { ...r.stats };
    delete mine['Crawl took']; delete tool['Crawl took'];
    same = JSON.stringify(mine) === JSON.stringify(tool);
  }
  t.same(mine, tool, 'the page\'s crawl statistics equal crawl --json\'s');
  t.equal(mine['Total Nodes'], 16);

  const dir = t.testdirName;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'ring-16.png') });

  // Four nodes leave: within 30 s (bounded), the page, left alone, shows 12.
  const gone = nodes.splice(12, 4);
  await Promise.all(gone.map((n) => n.stop()));
  const t0 = Date.now();
  const twelve = await page.waitForFunction(() => Number(document.getElementById('ring')!.getAttribute('data-nodes')) === 12, undefined, { timeout: 30_000, polling: 250 })
    .then(() => true, () => false);
  t.ok(twelve, `the page shows 12 nodes ${twelve ? `after ${((Date.now() - t0) / 1000).toFixed(1)} s` : 'NOT within 30 s'}`);
  await page.screenshot({ path: join(dir, 'ring-12.png') });
  t.same(errors, [], 'no script errors on the page');
  t.same(external, [], 'the page fetched nothing from elsewhere');
});
