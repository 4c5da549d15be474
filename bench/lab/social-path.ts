// bench:vpn's SocialVPN path: hosts a and b of the bench's lab, each a device of its own user
// (a's user and b's user friends both ways), on one open overlay (an open bootstrap overlay in
// boot, no group secret), measured like every other path (measure.ts) from a to b's local IP
// at a. Addresses are translated: every device is 172.31.0.1 on its own TAP, so iperf3's
// server in b listens on b's 172.31.0.1 while a's client connects to the address a gave b.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBootstrap } from './ipop.js';
import { measurePath, type BenchOptions, type PathResult } from './measure.js';
import { stopProcess, waitFor, type Lab } from './netns.js';
import { deviceConfig, socialvpn } from './social.js';
import { waitPing } from './baselines.js';

/** Every device's own address on its TAP (SocialVpnConfig/Subnet's .1, the default subnet). */
export const SELF_IP = '172.31.0.1';

interface Peer { name: string; ip4: string; status: string; path: string }
interface Status { self: { ip4: string }; peers: Peer[] }

const DEVICES = { a: { user: 'alice', device: 'laptop' }, b: { user: 'bob', device: 'desktop' } } as const;
type Host = keyof typeof DEVICES;
const HOSTS: Host[] = ['a', 'b'];

export async function measureSocial(lab: Lab, o: BenchOptions): Promise<PathResult> {
  const boot = await startBootstrap(lab, 'boot', 4, null);
  const bootIp = lab.ip('boot');
  const cfg = Object.fromEntries(HOSTS.map((h) => [h, deviceConfig(lab.dir, h, {
    bootIp, userKeyFile: join(lab.dir, `${DEVICES[h].user}.key`), deviceName: DEVICES[h].device,
  })])) as Record<Host, string>;
  const sv = async (h: Host, ...args: string[]) => {
    const r = await socialvpn(lab, h, [...args, '-c', cfg[h]]);
    if (r.code !== 0) throw new Error(`socialvpn ${args.join(' ')} on ${h}: exit ${r.code}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  };
  const status = async (h: Host): Promise<Status | undefined> => {
    try { return JSON.parse(await sv(h, 'status', '--json')) as Status; } catch { return undefined; }
  };
  const started: Host[] = [];
  try {
    const code: Partial<Record<Host, string>> = {};
    for (const h of HOSTS) {
      await sv(h, 'init', '--user', DEVICES[h].user);
      code[h] = (await sv(h, 'id')).trim();
    }
    await sv('a', 'friend', 'add', code.b!);
    await sv('b', 'friend', 'add', code.a!);
    for (const h of HOSTS) { await sv(h, 'start', '--log-level', 'warn'); started.push(h); }

    // Each sees the other online over a direct edge (not a relay through boot); measure over it.
    const peerAt = async (h: Host): Promise<Peer | undefined> => {
      const other = HOSTS.find((x) => x !== h)!;
      return (await status(h))?.peers.find((p) => p.name === `${DEVICES[other].device}.${DEVICES[other].user}.svpn`);
    };
    const direct = async (h: Host) => { const p = await peerAt(h); return p?.status === 'online' && p.path === 'direct'; };
    await waitFor(async () => (await direct('a')) && (await direct('b')), 60_000, 'a and b online to each other over a direct edge', 500)
      .catch(async (e: Error) => { throw new Error(`${e.message}: a sees ${JSON.stringify(await peerAt('a'))}, b sees ${JSON.stringify(await peerAt('b'))}`); });
    const bAtA = (await peerAt('a'))!.ip4;
    await waitPing(lab, 'a', bAtA, 20_000);
    // Line 1 of groupvpn.pid is the pid (src/cli/pid-file.ts); a wrong read would show 0 CPU.
    const pids = HOSTS.map((h) => Number(readFileSync(join(`${cfg[h]}.data`, 'groupvpn.pid'), 'utf8').split('\n')[0]));
    if (!pids.every((p) => Number.isInteger(p) && p > 0)) throw new Error(`cannot read the daemons' pids: ${pids.join(', ')}`);
    return await measurePath(lab, 'ipop social', 'a', 'b', bAtA, o, pids, SELF_IP);
  } finally {
    for (const h of started) await socialvpn(lab, h, ['stop', '-c', cfg[h]]);
    await stopProcess(boot);
  }
}
