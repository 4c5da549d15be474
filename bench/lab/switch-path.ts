// bench:vpn's switch-mode path: container a1 at site sa → container b1 at site sb, through
// both bridges and the switch-mode groupvpn members (bench/lab/switch-sites.ts; offload on,
// as router mode's default path), measured like every other path (measure.ts). Then its wire:
// the members stopped, the two bridges joined directly by a veth, the same containers
// measured again. What the VPN adds is taken over that wire, container to container, as
// router mode's is taken over the plain underlay, host to host.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getState, groupvpn } from './ipop.js';
import { measurePath, type BenchOptions, type PathResult } from './measure.js';
import { waitFor } from './netns.js';
import { BRIDGE, SwitchSites, type Site } from './switch-sites.js';
import { waitPing } from './baselines.js';

export interface SwitchPaths { switched: PathResult; wire: PathResult }

const FROM = 'a1', TO = 'b1';

export async function measureSwitch(o: BenchOptions): Promise<SwitchPaths> {
  const sites = await SwitchSites.create({ prefix: 'bvpnsw', bootNodes: 4 });
  const { lab } = sites;
  try {
    if (o.loss > 0) await lab.setLoss(o.loss);
    const ip = sites.container(TO).ip;
    await waitPing(lab, FROM, ip, 30_000);
    // The first frames open the direct (on-demand) connection; measure over it.
    await waitFor(async () => (await getState(lab, 'sa'))?.peers.find((p) => p.status === 'online' && p.path === 'direct'), 20_000, 'direct connection sa → sb', 300);
    // Line 1 of groupvpn.pid is the pid (src/cli/pid-file.ts); a wrong read would show 0 CPU.
    const pids = (['sa', 'sb'] as Site[]).map((s) => Number(readFileSync(join(`${sites.cfg[s]}.data`, 'groupvpn.pid'), 'utf8').split('\n')[0]));
    if (!pids.every((p) => Number.isInteger(p) && p > 0)) throw new Error(`cannot read the switch members' pids: ${pids.join(', ')}`);
    const switched = await measurePath(lab, 'ipop switch', FROM, TO, ip, o, pids);

    // The wire: with both members stopped (their TAPs gone), a veth between the bridges; never
    // both at once, which would be a loop between two bridges without STP.
    for (const s of ['sa', 'sb'] as Site[]) {
      const r = await groupvpn(lab, s, ['stop', '-c', sites.cfg[s]], 20_000);
      if (r.code !== 0) throw new Error(`groupvpn stop in ${s}: ${(r.stderr || r.stdout).trim()}`);
    }
    const tapGone = async (s: Site) => (await lab.exec(s, ['ip', '-o', 'link', 'show', 'master', BRIDGE])).stdout.includes('tapipop') ? false : true;
    await waitFor(async () => (await tapGone('sa')) && (await tapGone('sb')), 10_000, 'the TAPs to leave the bridges', 200);
    const steps: Array<[Site, string[]]> = [
      ['sa', ['ip', 'link', 'add', 'wire', 'type', 'veth', 'peer', 'name', 'wire', 'netns', lab.ns('sb')]],
      ['sa', ['ip', 'link', 'set', 'wire', 'master', BRIDGE, 'up']],
      ['sb', ['ip', 'link', 'set', 'wire', 'master', BRIDGE, 'up']],
    ];
    for (const [s, argv] of steps) {
      const r = await lab.exec(s, argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${s}: ${r.stderr.trim()}`);
    }
    await waitPing(lab, FROM, ip, 10_000);
    const wire = await measurePath(lab, 'bridged wire', FROM, TO, ip, o);
    return { switched, wire };
  } finally {
    await sites.destroy();
  }
}
