#!/usr/bin/env node
// run_bootstrap_node CONFIG [--nodes N]: runs one or many overlay nodes in this process,
// as the IPOP bootstrap tutorial does, until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { ConfigError, loadNodeConfig } from '../config/node-config.js';
import { LEVELS, LOG_FORMAT_USAGE, LOG_FORMATS, LOG_LEVEL_USAGE, loggerFor, parseLevel, parseLogFormat, quietable } from '../util/log.js';
import { startOverlay } from './overlay.js';
import { installShutdown } from './shutdown.js';

const USAGE = `usage: run_bootstrap_node CONFIG [--nodes N] [--bind ADDRESS] [${LOG_LEVEL_USAGE}] [${LOG_FORMAT_USAGE}] [--link-timeout MS]`;

async function main(): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ allowPositionals: true, options: {
      nodes: { type: 'string', short: 'c', default: '1' }, bind: { type: 'string' },
      'log-level': { type: 'string', default: 'info' }, 'log-format': { type: 'string', default: 'text' }, help: { type: 'boolean', short: 'h' },
      'link-timeout': { type: 'string' },
    } }));
  } catch (e) { process.stderr.write(`run_bootstrap_node: ${(e as Error).message}\n${USAGE}\n`); return 2; }
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (positionals.length !== 1) { process.stderr.write(`${USAGE}\n`); return 2; }
  const count = Number(values.nodes);
  if (!Number.isInteger(count) || count < 1 || count > 10000) { process.stderr.write('run_bootstrap_node: --nodes must be an integer from 1 to 10000\n'); return 2; }
  const level = parseLevel(values['log-level']!);
  if (!level) { process.stderr.write(`run_bootstrap_node: --log-level must be one of ${LEVELS.join(', ')}\n`); return 2; }
  const format = parseLogFormat(values['log-format']!);
  if (!format) { process.stderr.write(`run_bootstrap_node: --log-format must be one of ${LOG_FORMATS.join(', ')}\n`); return 2; }
  const log = quietable(loggerFor(level, format));
  // How long a silent connection lives (pings start at a third of it); default 30 s.
  const lt = values['link-timeout'] === undefined ? undefined : Number(values['link-timeout']);
  if (lt !== undefined && (!Number.isInteger(lt) || lt < 1000)) { process.stderr.write('run_bootstrap_node: --link-timeout must be an integer >= 1000 (ms)\n'); return 2; }
  const nodeOptions = lt ? { link: { timeoutMs: lt, pingAfterMs: Math.round(lt / 3) } } : undefined;

  let cfg;
  try { cfg = loadNodeConfig(positionals[0]!); } catch (e) {
    if (e instanceof ConfigError) { process.stderr.write(`run_bootstrap_node: ${e.message}\n`); return 2; }
    throw e;
  }
  let overlay;
  try { overlay = await startOverlay(cfg, { count, bind: values.bind, log, nodeOptions }); } catch (e) {
    // JSON logs stay one object per line to the end.
    if (format === 'json') log.error((e as Error).message);
    else process.stderr.write(`run_bootstrap_node: ${(e as Error).message}\n`);
    return e instanceof ConfigError ? 2 : 1;
  }
  const first = overlay.nodes[0]!;
  process.stdout.write(`started ${count} node${count > 1 ? 's' : ''} in namespace ${cfg.namespace}\n`);
  process.stdout.write(`first node ${first.address.key} on ${first.info().tas.map((t) => t.key).join(' ')}\n`);
  process.stdout.write(overlay.server ? `control API http://127.0.0.1:${overlay.server.port}/xm.rem\n` : 'control API disabled\n');
  installShutdown(() => overlay.stop(), log);
  return -1;
}

main().then((c) => { if (c >= 0) process.exit(c); }, (e) => {
  process.stderr.write(`run_bootstrap_node: ${(e as Error).message}\n`);
  process.exit(1);
});
