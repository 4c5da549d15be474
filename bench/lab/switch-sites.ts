// Switch mode's picture in a namespace lab, the LXC set-up IPOP's switchmode is for: a
// bootstrap overlay, and two sites, each a host with a Linux bridge br0, two containers whose
// eth0 is a port of br0, and one groupvpn member in switch mode whose TAP joins br0. The four
// containers share 10.0.3.0/24 across the sites:
//
//   site sa: br0 ── a1 10.0.3.11, a2 10.0.3.12, tapipop ┐
//                                                        ├─ overlay (bootstrap on host boot)
//   site sb: br0 ── b1 10.0.3.21, b2 10.0.3.22, tapipop ┘
//
// IPv6 is off in the sites and containers: its background multicast (router solicitations,
// MLD, DAD) would otherwise cross the switch at odd times and blur its counters.
// Shared by test/vpn-switch-netns.test.ts and `npm run demo:switch`.
import { getState, groupvpn, hostConfig, startBootstrap } from './ipop.js';
import { Lab, type ExecResult } from './netns.js';

export type Site = 'sa' | 'sb';
export const SITES: readonly Site[] = ['sa', 'sb'];
export interface Container { name: string; site: Site; ip: string; mac: string }

/** MACs fixed from the IP (locally administered 02:00 + the IPv4), so tables are easy to read. */
const container = (name: string, site: Site, last: number): Container =>
  ({ name, site, ip: `10.0.3.${last}`, mac: `02:00:0a:00:03:${last.toString(16).padStart(2, '0')}` });
export const CONTAINERS: readonly Container[] = [container('a1', 'sa', 11), container('a2', 'sa', 12), container('b1', 'sb', 21), container('b2', 'sb', 22)];
export const CONTAINER_NET = { prefix: 24, broadcast: '10.0.3.255' };
export const BRIDGE = 'br0';
export const TAP = 'tapipop';

/** Switch mode's part of get_state's local_state. */
export interface SwitchLocalState {
  mode: string; uid: string; mac: string; local_macs: string[];
  arp: Array<{ ip: string; mac: string; port: string; ageMs: number }>;
  switch: Record<string, number>;
}
export interface SwitchState { local_state: SwitchLocalState; peers: Array<{ uid: string; macs?: string[]; status?: string }> }

export interface SwitchSitesOptions {
  /** Lab prefix (namespaces are <prefix>-<pid>-<seq>-<host>). */
  prefix: string;
  /** Nodes in the bootstrap overlay (default 6). */
  bootNodes?: number;
  /** IpopConfig/MacAgeSeconds (default: the VPN's own). */
  macAgeSeconds?: number;
}

export class SwitchSites {
  /** The TAP's MTU (groupvpn status), which the containers' eth0 were given. */
  mtu = 0;
  private constructor(readonly lab: Lab, readonly cfg: Record<Site, string>) {}

  /** Builds the lab, the bridges and containers, the bootstrap overlay, and starts both members. */
  static async create(o: SwitchSitesOptions): Promise<SwitchSites> {
    const lab = await Lab.create(o.prefix, ['boot', ...SITES]);
    try {
      const cfg = {} as Record<Site, string>;
      for (const site of SITES) {
        cfg[site] = hostConfig(lab.dir, site, { bootIp: lab.ip('boot'), ns: 'labswitch', switchMode: { bridge: BRIDGE, macAgeSeconds: o.macAgeSeconds } });
        await must(lab.exec(site, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']), `IPv6 off in ${site}`);
        await must(lab.exec(site, ['ip', 'link', 'add', BRIDGE, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']), `${BRIDGE} in ${site}`);
        await must(lab.exec(site, ['ip', 'link', 'set', BRIDGE, 'up']), `${BRIDGE} up in ${site}`);
      }
      for (const c of CONTAINERS) {
        // The veth comes up later, with its MAC and MTU set, so it says nothing before.
        await lab.attach(c.name, c.site, BRIDGE, `v${c.name}`);
        await must(lab.exec(c.name, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.eth0.disable_ipv6=1']), `IPv6 off in ${c.name}`);
      }
      const sites = new SwitchSites(lab, cfg);
      await startBootstrap(lab, 'boot', o.bootNodes ?? 6);
      const started = await Promise.all(SITES.map((s) => groupvpn(lab, s, ['start', '-c', cfg[s]])));
      for (const [i, r] of started.entries()) if (r.code !== 0) throw new Error(`groupvpn start in ${SITES[i]}: ${(r.stderr || r.stdout).trim()}`);
      const mtus = await Promise.all(SITES.map(async (s) => Number((await sites.status(s, true)).mtu)));
      if (!(mtus[0]! > 0) || mtus[0] !== mtus[1]) throw new Error(`the members' TAPs report MTUs ${mtus.join(' and ')}`);
      sites.mtu = mtus[0]!;
      for (const c of CONTAINERS) {
        await must(lab.exec(c.name, ['ip', 'link', 'set', 'eth0', 'down']), `${c.name} down`);
        await must(lab.exec(c.name, ['ip', 'link', 'set', 'eth0', 'address', c.mac, 'mtu', String(sites.mtu)]), `${c.name}'s MAC and MTU`);
        await must(lab.exec(c.name, ['ip', 'addr', 'add', `${c.ip}/${CONTAINER_NET.prefix}`, 'brd', CONTAINER_NET.broadcast, 'dev', 'eth0']), `${c.name}'s address`);
        await must(lab.exec(c.name, ['ip', 'link', 'set', 'eth0', 'up']), `${c.name} up`);
      }
      return sites;
    } catch (e) {
      await lab.destroy();
      throw e;
    }
  }

  container(name: string): Container {
    const c = CONTAINERS.find((x) => x.name === name);
    if (!c) throw new Error(`no container ${name}`);
    return c;
  }

  /** `groupvpn status` of a site's member: its text, or (json) the parsed object. */
  async status(site: Site, json: true): Promise<Record<string, unknown>>;
  async status(site: Site, json?: false): Promise<string>;
  async status(site: Site, json = false): Promise<string | Record<string, unknown>> {
    const r = await groupvpn(this.lab, site, ['status', '-c', this.cfg[site], ...(json ? ['--json'] : [])], 20_000);
    if (r.code !== 0) throw new Error(`groupvpn status in ${site}: ${(r.stderr || r.stdout).trim()}`);
    return json ? JSON.parse(r.stdout) as Record<string, unknown> : r.stdout;
  }

  /** get_state of a site's member (undefined if it does not answer). */
  async state(site: Site): Promise<SwitchState | undefined> {
    return await getState(this.lab, site) as unknown as SwitchState | undefined;
  }

  /** Stops both members (bounded), then removes the whole lab. */
  async destroy(): Promise<void> {
    await Promise.all(SITES.map((s) => groupvpn(this.lab, s, ['stop', '-c', this.cfg[s]], 20_000)));
    await this.lab.destroy();
  }
}

async function must(p: Promise<ExecResult>, what: string): Promise<ExecResult> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: ${(r.stderr || r.stdout || `exit ${r.code}`).trim()}`);
  return r;
}
