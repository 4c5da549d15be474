// Running our GroupVPN in a namespace lab: a bootstrap overlay on one host, `groupvpn` on
// others, each with its own config file. Shared by the VPN tests and `npm run bench:vpn`.
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { waitFor, type ExecResult, type Lab } from './netns.js';

/** The package root, from sources (bench/lab) or compiled code (dist/bench/lab). */
export const ROOT = (() => {
  let d = import.meta.dirname;
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('package root not found');
    d = up;
  }
  return d;
})();
export const BIN = {
  run: join(ROOT, 'dist/src/cli/run-bootstrap-node.js'),
  groupvpn: join(ROOT, 'dist/src/cli/groupvpn.js'),
  socialvpn: join(ROOT, 'dist/src/cli/socialvpn.js'),
  bget: join(ROOT, 'dist/tools/bget.js'),
  bput: join(ROOT, 'dist/tools/bput.js'),
  crawl: join(ROOT, 'dist/tools/crawl.js'),
  floorRelay: join(ROOT, 'dist/bench/lab/floor-relay.js'),
  floorNative: join(ROOT, 'dist/bench/lab/floor-native.js'),
  nonMember: join(ROOT, 'dist/bench/lab/non-member.js'),
};

export const OVERLAY_PORT = 17000;
export const SECRET = 'lab group secret';

export interface HostOptions {
  bootIp: string;
  /** RemoteTAs instead of the bootstrap's (brunet.udp://IP:PORT each); [] = none: the node starts an overlay of its own. */
  remoteTAs?: string[];
  /** NodeConfig/DevicesToBind: the interfaces whose addresses the overlay advertises. */
  devicesToBind?: string[];
  /** IpopConfig/NetworkIgnoreList: interfaces whose addresses the overlay never advertises. */
  networkIgnoreList?: string[];
  /** BrunetNamespace (default labrealm) and Security/GroupSecret (default SECRET): another overlay. */
  realm?: string;
  secret?: string;
  ns?: string;
  /** Static virtual IP; without it the address comes from the namespace's DHCP range. */
  vip?: string;
  prefix?: number;
  onDemand?: { enabled: boolean; threshold?: number; idle?: number };
  getStatePort?: number;
  xmlRpcPort?: number;
  device?: string;
  dhcpConfigFile?: string;
  overlayPort?: number;
  /** IpopConfig/Offload (default true). */
  offload?: boolean;
  /** IpopConfig/FastPath (default: absent, i.e. true). */
  fastPath?: boolean;
  /** IpopConfig/NativeFlows (omitted: the default, false). */
  nativeFlows?: boolean;
  /** IpopConfig/EnableMulticast (default false). */
  multicast?: boolean;
  /** Switch mode: IpopConfig/Mode switch, with the TAP in this bridge (IpopConfig/Bridge) and IpopConfig/MacAgeSeconds. */
  switchMode?: { bridge?: string; macAgeSeconds?: number };
}

export function hostConfig(dir: string, name: string, o: HostOptions): string {
  const p = resolve(dir, `${name}.config`);
  const od = o.onDemand ?? { enabled: true };
  writeFileSync(p, `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>${o.realm ?? 'labrealm'}</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>${o.overlayPort ?? OVERLAY_PORT}</port></EdgeListener></EdgeListeners>
  <RemoteTAs>${(o.remoteTAs ?? [`brunet.udp://${o.bootIp}:${OVERLAY_PORT}`]).map((ta) => `<Transport>${ta}</Transport>`).join('')}</RemoteTAs>
  ${o.devicesToBind ? `<DevicesToBind>${o.devicesToBind.map((d) => `<Device>${d}</Device>`).join('')}</DevicesToBind>` : ''}
  <XmlRpcManager><Enabled>true</Enabled><Port>${o.xmlRpcPort ?? 10000}</Port></XmlRpcManager>
  <Security><GroupSecret>${o.secret ?? SECRET}</GroupSecret></Security>
  <IpopConfig>
    <IpopNamespace>${o.ns ?? 'labns'}</IpopNamespace>
    <VirtualNetworkDevice>${o.device ?? 'tapipop'}</VirtualNetworkDevice>
    ${o.networkIgnoreList ? `<NetworkIgnoreList>${o.networkIgnoreList.map((d) => `<Device>${d}</Device>`).join('')}</NetworkIgnoreList>` : ''}
    ${o.vip ? `<AddressData><IPAddress>${o.vip}</IPAddress><Netmask>${o.prefix ?? 24}</Netmask></AddressData>` : ''}
    ${o.dhcpConfigFile ? `<DHCPConfigFile>${o.dhcpConfigFile}</DHCPConfigFile>` : ''}
    <OnDemand><Enabled>${od.enabled}</Enabled><Threshold>${od.threshold ?? 128}</Threshold><IdleTimeout>${od.idle ?? 240}</IdleTimeout></OnDemand>
    <GetStatePort>${o.getStatePort ?? 5800}</GetStatePort>
    <Offload>${o.offload ?? true}</Offload>
    ${o.fastPath !== undefined ? `<FastPath>${o.fastPath}</FastPath>` : ''}
    ${o.nativeFlows !== undefined ? `<NativeFlows>${o.nativeFlows}</NativeFlows>` : ''}
    <EnableMulticast>${o.multicast ?? false}</EnableMulticast>
    ${o.switchMode ? `<Mode>switch</Mode>${o.switchMode.bridge ? `<Bridge>${o.switchMode.bridge}</Bridge>` : ''}` : ''}
    ${o.switchMode?.macAgeSeconds !== undefined ? `<MacAgeSeconds>${o.switchMode.macAgeSeconds}</MacAgeSeconds>` : ''}
  </IpopConfig>
</NodeConfig>
`);
  return p;
}

/**
 * A bootstrap overlay of `nodes` nodes in `host` (same realm and secret as hostConfig), once its
 * ring is consistent. secret null: an open overlay (SocialVPN's), with no group secret.
 */
export async function startBootstrap(lab: Lab, host: string, nodes: number, secret: string | null = SECRET): Promise<ChildProcess> {
  const cfg = join(lab.dir, 'boot.config');
  writeFileSync(cfg, `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>labrealm</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>${OVERLAY_PORT}</port></EdgeListener></EdgeListeners>
  <RemoteTAs><Transport>brunet.udp://${lab.ip(host)}:${OVERLAY_PORT}</Transport></RemoteTAs>
  <XmlRpcManager><Enabled>true</Enabled><Port>10000</Port></XmlRpcManager>
  ${secret === null ? '' : `<Security><GroupSecret>${secret}</GroupSecret></Security>`}
</NodeConfig>
`);
  const p = lab.spawn(host, [process.execPath, BIN.run, cfg, '--nodes', String(nodes), '--log-level', 'warn']);
  await waitFor(() => /started \d+ node/.test(lab.output(p)) || p.exitCode !== null, 20_000, 'bootstrap overlay');
  if (p.exitCode !== null) throw new Error(`bootstrap overlay failed: ${lab.output(p)}`);
  // Members join a settled ring, as they would in practice.
  await waitFor(async () => {
    const r = await lab.exec(host, [process.execPath, BIN.crawl, '--json'], { timeoutMs: 20_000 });
    try { const c = JSON.parse(r.stdout); return c['Total Nodes'] === nodes && c.Consistency === 1; } catch { return false; }
  }, 60_000, `bootstrap ring of ${nodes}`, 500);
  return p;
}

export function groupvpn(lab: Lab, host: string, args: string[], timeoutMs = 90_000): Promise<ExecResult> {
  return lab.exec(host, [process.execPath, BIN.groupvpn, ...args], { timeoutMs });
}

/** get_state, exactly as IPOP's README sends it: `\x02\x01{"m":"get_state"}` to 127.0.0.1:port. */
export async function getState(lab: Lab, host: string, port = 5800): Promise<{ local_state: Record<string, string>; peers: Array<Record<string, string>> } | undefined> {
  const script = `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{process.stdout.write(m);process.exit(0)});` +
    `s.send(Buffer.concat([Buffer.from([2,1]),Buffer.from('{"m":"get_state"}')]),${port},'127.0.0.1');setTimeout(()=>process.exit(1),2000);`;
  const r = await lab.exec(host, [process.execPath, '-e', script], { timeoutMs: 5000 });
  if (r.code !== 0) return undefined;
  try { return JSON.parse(r.stdout); } catch { return undefined; }
}
