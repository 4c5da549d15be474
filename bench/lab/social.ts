// Running SocialVPN in a namespace lab: an open bootstrap overlay (no group secret, like
// Brunet's public pool) and `socialvpn` on each device, one config per device.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ExecResult, Lab } from './netns.js';
import { BIN, OVERLAY_PORT } from './ipop.js';

export interface DeviceOptions {
  bootIp: string;
  /** The user key file (copy it to make another device of the same user). */
  userKeyFile: string;
  deviceName: string;
  subnet?: string;
  device?: string;
  getStatePort?: number;
  dns?: boolean;
  /** SocialVpnConfig/Offload (default true). */
  offload?: boolean;
  /** IpopConfig of a GroupVPN beside it is not written here. */
  xmlRpcPort?: number;
  overlayPort?: number;
}

export function deviceConfig(dir: string, name: string, o: DeviceOptions): string {
  const p = resolve(dir, `${name}.svpn.config`);
  writeFileSync(p, `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>labrealm</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>${o.overlayPort ?? OVERLAY_PORT}</port></EdgeListener></EdgeListeners>
  <RemoteTAs><Transport>brunet.udp://${o.bootIp}:${OVERLAY_PORT}</Transport></RemoteTAs>
  <XmlRpcManager><Enabled>true</Enabled><Port>${o.xmlRpcPort ?? 10000}</Port></XmlRpcManager>
  <SocialVpnConfig>
    <UserKeyFile>${o.userKeyFile}</UserKeyFile>
    <DeviceName>${o.deviceName}</DeviceName>
    <Subnet>${o.subnet ?? '172.31.0.0/16'}</Subnet>
    <VirtualNetworkDevice>${o.device ?? 'svpn0'}</VirtualNetworkDevice>
    <DnsEnabled>${o.dns ?? true}</DnsEnabled>
    <GetStatePort>${o.getStatePort ?? 5802}</GetStatePort>
    <Offload>${o.offload ?? true}</Offload>
  </SocialVpnConfig>
</NodeConfig>
`);
  return p;
}

export function socialvpn(lab: Lab, host: string, args: string[], timeoutMs = 90_000): Promise<ExecResult> {
  return lab.exec(host, [process.execPath, BIN.socialvpn, ...args], { timeoutMs });
}
