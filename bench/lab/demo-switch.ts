#!/usr/bin/env node
// `npm run demo:switch` (root): switch mode in network namespaces. Two sites, each a Linux
// bridge with two containers and one groupvpn member in switch mode whose TAP is a port of
// the bridge (bench/lab/switch-sites.ts); containers ping each other across the sites, then
// both members' `groupvpn status` shows the MAC and ARP tables. Everything is removed at the
// end, also on failure or Ctrl-C.
import { labUnavailableReason, missingCommandsReason, pingArgv } from './netns.js';
import { CONTAINERS, SITES, SwitchSites } from './switch-sites.js';

async function main(): Promise<number> {
  const why = labUnavailableReason() ?? missingCommandsReason(['ping', 'sysctl']);
  if (why) { console.error(`demo:switch: ${why}`); return 1; }
  console.log('building two sites (bridge br0, containers 10.0.3.11/.12 at sa and .21/.22 at sb), a bootstrap overlay, one switch-mode member per site ...');
  const t0 = performance.now();
  const sites = await SwitchSites.create({ prefix: 'swdemo' });
  try {
    console.log(`ready after ${((performance.now() - t0) / 1000).toFixed(1)} s; TAP MTU ${sites.mtu}, given to the containers too\n`);
    let failed = 0;
    for (const [from, to] of [['a1', 'b1'], ['b2', 'a2'], ['a2', 'b2']] as const) {
      const c = sites.container(to);
      const r = await sites.lab.exec(from, pingArgv(c.ip, { count: 3, intervalS: 0.3, waitS: 3 }), { timeoutMs: 20_000 });
      if (r.code !== 0) failed++;
      const summary = /^.*packets transmitted.*$/m.exec(r.stdout)?.[0] ?? (r.stderr.trim() || `exit ${r.code}`);
      console.log(`ping ${from} (${sites.container(from).ip}, site ${sites.container(from).site}) → ${to} (${c.ip}, site ${c.site}): ${summary}`);
    }
    for (const s of SITES) {
      console.log(`\n== groupvpn status at site ${s} (containers here: ${CONTAINERS.filter((c) => c.site === s).map((c) => `${c.name} ${c.mac}`).join(', ')})`);
      console.log((await sites.status(s)).trimEnd());
    }
    console.log('\nremoving the namespaces ...');
    return failed === 0 ? 0 : 1;
  } finally {
    await sites.destroy();
  }
}

main().then((code) => process.exit(code), (e) => {
  console.error(`demo:switch: ${(e as Error).message}`);
  process.exit(1);
});
