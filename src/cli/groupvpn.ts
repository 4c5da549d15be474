#!/usr/bin/env node
// groupvpn start|stop|status|run: the IPOP GroupVPN on this host (commands in vpn-command.ts).
// Router mode routes IP packets to the namespace's members; switch mode switches Ethernet
// frames (vpn-modes.ts).
import { fileURLToPath } from 'node:url';
import { LOG_FORMAT_USAGE, LOG_LEVEL_USAGE } from '../util/log.js';
import { printStatus } from './groupvpn-status.js';
import { loadVpnConfig } from './groupvpn-run.js';
import { vpnCommand } from './vpn-command.js';
import { startRouterMode, startSwitchMode } from './vpn-modes.js';
import type { VpnProgram } from './vpn-program.js';

const groupvpn: VpnProgram = {
  name: 'groupvpn',
  script: fileURLToPath(import.meta.url),
  usage: `usage: groupvpn start|stop|status|run [-c CONFIG] [--ipop IPOP_CONFIG] [--state-dir DIR]
                [${LOG_LEVEL_USAGE}] [${LOG_FORMAT_USAGE}] [--timeout SECONDS] [--json]
  CONFIG defaults to config/node.config.xml; DIR to CONFIG.data (stop reads only DIR)`,
  defaultConfig: 'config/node.config.xml',
  load: loadVpnConfig,
  startMode: (ctx, loaded) => (loaded.ipop.mode === 'switch' ? startSwitchMode(ctx) : startRouterMode(ctx)),
  startedLine(s) {
    const l = s.local_state as Record<string, string> | undefined;
    const what = s.mode === 'switch' ? `switch mode on ${s.device}${s.bridge ? ` in bridge ${s.bridge}` : ''}` : `${l?.ip4} on ${s.device}`;
    return `${what}, node ${l?.uid}, namespace ${s.namespace}`;
  },
  printStatus,
};

vpnCommand(groupvpn, process.argv.slice(2)).then((c) => { if (c >= 0) process.exit(c); }, (e) => {
  process.stderr.write(`groupvpn: ${(e as Error).stack}\n`);
  process.exit(1);
});
