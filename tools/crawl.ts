#!/usr/bin/env node
// crawl: walk the ring through the local control API and print Brunet's statistics.
import { parseArgs } from 'node:util';
import { EXIT_BAD_INPUT, EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK } from '../src/cli/exit.js';
import { progress } from '../src/util/progress.js';
import { crawl, CrawlError, DEFAULT_CRAWL_TIMEOUT_MS, formatStats } from './crawl-lib.js';

const USAGE = `usage: crawl [--port P] [--json] [--concurrency N] [--timeout S]   (S: overall limit in seconds, default ${DEFAULT_CRAWL_TIMEOUT_MS / 1000})`;
const fail = (msg: string, code: number, usage = false): number => {
  process.stderr.write(`crawl: ${msg.replace(/\s*\n\s*/g, ' ')}\n${usage ? USAGE + '\n' : ''}`);
  return code;
};

async function main(): Promise<number> {
  // parseArgs refuses `--timeout -1` as ambiguous; glue such values on so the checks below can explain.
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length - 1; i++) {
    if (['--port', '--concurrency', '--timeout'].includes(argv[i]!) && /^-\d/.test(argv[i + 1]!)) argv.splice(i, 2, `${argv[i]}=${argv[i + 1]}`);
  }
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      port: { type: 'string', default: '10000' }, json: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '64' }, timeout: { type: 'string', default: String(DEFAULT_CRAWL_TIMEOUT_MS / 1000) },
      help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) { return fail((e as Error).message, EXIT_BAD_INPUT, true); }
  if (values.help) { process.stdout.write(`${USAGE}\n`); return EXIT_OK; }
  if (positionals.length) return fail(`unexpected argument ${JSON.stringify(positionals[0])}`, EXIT_BAD_INPUT, true);
  const port = Number(values.port), concurrency = Number(values.concurrency), timeout = Number(values.timeout);
  if (!/^\d+$/.test(values.port!) || port < 1 || port > 65535) return fail('--port must be 1-65535', EXIT_BAD_INPUT);
  if (!/^\d+$/.test(values.concurrency!) || concurrency < 1) return fail('--concurrency must be a positive integer', EXIT_BAD_INPUT);
  if (!/^\d+(\.\d+)?$/.test(values.timeout!) || !(timeout > 0) || timeout > 86400) return fail(`--timeout must be a number of seconds above 0 and at most 86400, got ${JSON.stringify(values.timeout)}`, EXIT_BAD_INPUT);
  const bar = progress();
  try {
    const { stats, complete, pending } = await crawl({ port, concurrency, timeoutMs: Math.round(timeout * 1000),
      onProgress: (f, q) => bar.update(`crawled ${f} nodes, ${q} pending`) });
    bar.done();
    if (stats['Total Nodes'] === 0) return fail(complete ? 'no node answered Information.Info' : `no node answered Information.Info within ${timeout} s`, EXIT_FAILED);
    process.stdout.write(values.json ? JSON.stringify(stats, null, 2) + '\n' : formatStats(stats) + '\n');
    // A partial crawl's statistics are printed (they say what was reached) but it is a failure.
    if (!complete) return fail(`stopped after the --timeout of ${timeout} s: ${stats['Total Nodes']} nodes crawled, ${pending} not yet`, EXIT_FAILED);
    return EXIT_OK;
  } catch (e) {
    bar.done();
    return fail((e as Error).message, e instanceof CrawlError && e.notRunning ? EXIT_NOT_RUNNING : EXIT_FAILED);
  }
}

main().then((c) => { process.exitCode = c; }, (e) => { process.stderr.write(`crawl: ${(e as Error).message}\n`); process.exitCode = EXIT_FAILED; });
