#!/usr/bin/env node
// crawl: walk the ring through the local control API and print Brunet's statistics.
import { parseArgs } from 'node:util';
import { crawl, CrawlError, formatStats } from './crawl-lib.js';

const USAGE = 'usage: crawl [--port P] [--json] [--concurrency N] [--timeout MS]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: {
      port: { type: 'string', default: '10000' }, json: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '64' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) { process.stderr.write(`crawl: ${(e as Error).message}\n${USAGE}\n`); return 2; }
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  const port = Number(values.port), concurrency = Number(values.concurrency);
  if (!Number.isInteger(port) || port < 1 || port > 65535) { process.stderr.write(`crawl: --port must be 1-65535\n`); return 2; }
  if (!Number.isInteger(concurrency) || concurrency < 1) { process.stderr.write(`crawl: --concurrency must be a positive integer\n`); return 2; }
  const tty = process.stderr.isTTY;
  try {
    const { stats } = await crawl({ port, concurrency, onProgress: tty ? (f, q) => process.stderr.write(`\rcrawled ${f} nodes, ${q} pending   `) : undefined });
    if (tty) process.stderr.write('\r\x1b[K');
    if (stats['Total Nodes'] === 0) { process.stderr.write('crawl: no node answered Information.Info\n'); return 1; }
    process.stdout.write(values.json ? JSON.stringify(stats, null, 2) + '\n' : formatStats(stats) + '\n');
    return 0;
  } catch (e) {
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`crawl: ${e instanceof CrawlError ? e.message : (e as Error).message}\n`);
    return 1;
  }
}

main().then((c) => { process.exitCode = c; });
